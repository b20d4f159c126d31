"""The rows of the table, one module each. Every module has NEEDS (the set-up step its
inputs come from) and run(args, setup) -> RowResult."""

from rows import encode, gpu, infer, prepare, profile, resize, stream, train_step

# The table's order; the names are what --rows takes.
MODULES = {"prepare": prepare, "resize": resize, "train-step": train_step, "infer": infer,
           "profile": profile, "stream": stream, "encode": encode, "gpu": gpu}
ROWS = list(MODULES)
