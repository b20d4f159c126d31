# nerveseg: set-up, build, test, demo. `make test` and `make demo` work on a fresh
# machine: the first run creates .venv/ with PyTorch 2.11.0 (its libtorch is what tch
# 0.24 links) and cmake (for the bundled HDF5 build), then cargo does the rest.
# Tests and demo share the release profile so the slow build scripts run once.

PYTHON ?= python3
VENV := .venv
TORCH_VERSION := 2.11.0
STAMP := $(VENV)/.nerveseg-setup-torch-$(TORCH_VERSION)
CARGO ?= cargo

.PHONY: all setup build test demo py docs-test onnx-check bench bench-venv fixtures-npy fixtures-keras fixtures-preprocess fixtures-submission fixtures-frames clean-venv fuzz

all: build

setup: $(STAMP)

# The venv: torch==2.11.0 and cmake, plus `.venv/libtorch`, a stable link to the wheel's
# torch/ folder (its path names the Python version) that .cargo/config.toml points
# LIBTORCH at.
$(STAMP):
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)"; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10 or newer is needed"' 
	@if ! $(PYTHON) -m venv $(VENV) 2>/dev/null; then \
		echo "python3 -m venv failed; installing python3-venv"; \
		(apt-get update -q && apt-get install -y -q python3-venv) >/dev/null && $(PYTHON) -m venv $(VENV); \
	fi
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q torch==$(TORCH_VERSION) cmake
	ln -sfn "$$($(VENV)/bin/python -c 'import os, importlib.util as u; print(os.path.dirname(u.find_spec("torch").origin))')" $(VENV)/libtorch
	@test -f $(VENV)/libtorch/lib/libtorch_cpu.so || { echo "no libtorch in $(VENV)/libtorch/lib"; exit 1; }
	touch $@

build: setup
	$(CARGO) build --release

test: setup
	$(CARGO) test --release

demo: build
	./target/release/nerveseg demo --out demo-out

# The README's Python, in a venv of its own (docs/.venv): numpy, scikit-image and
# Pillow, with torch taken from .venv through a .pth file. `make docs-test` runs every
# ```python block of the README verbatim there (docs/check_readme_python.py); CI runs it.
DOCS_VENV := docs/.venv
DOCS_STAMP := $(DOCS_VENV)/.nerveseg-docs-setup
py: $(DOCS_STAMP)
$(DOCS_STAMP): docs/requirements.txt $(STAMP)
	test -x $(DOCS_VENV)/bin/python || $(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install -q -r docs/requirements.txt
	$(DOCS_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])' > $(DOCS_VENV)/.site
	$(VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])' > "$$(cat $(DOCS_VENV)/.site)/nerveseg-torch.pth"
	$(DOCS_VENV)/bin/python -c 'import torch, numpy, skimage, PIL'
	touch $@

docs-test: build py
	$(DOCS_VENV)/bin/python docs/check_readme_python.py --nerveseg target/release/nerveseg

# `export --onnx` checked by hand in onnxruntime, in a venv of its own (not part of
# `make test`, whose check runs the graph in tract): ONNX's checker, the graph against
# predict and stream on real frames, and batch-1 timings beside `nerveseg stream`.
# ONNX_ARGS="--weights W --frames F.npy [-- RULE FLAGS]" names the checkpoint and the
# uint8 (N, H, W) frames (README, "ONNX").
ONNX_FIX := tests/fixtures/onnx
onnx-check: build
	@test -n "$(ONNX_ARGS)" || { echo 'make onnx-check needs ONNX_ARGS="--weights W --frames F.npy" (README, "ONNX")'; exit 2; }
	test -x $(ONNX_FIX)/.venv/bin/python || $(PYTHON) -m venv $(ONNX_FIX)/.venv
	$(ONNX_FIX)/.venv/bin/pip install -q -r $(ONNX_FIX)/requirements.txt
	$(ONNX_FIX)/.venv/bin/python $(ONNX_FIX)/check_onnxruntime.py --nerveseg target/release/nerveseg \
		--work $${TMPDIR:-/tmp}/nerveseg-onnx-check $(ONNX_ARGS)

# The benchmark suite (not part of CI): nerveseg beside the original scripts, PyTorch
# eager and tf-keras on the same inputs, interleaved; prints the table and writes
# bench/results.md. Its data and scratch files go to bench/work/ (about 22 GB at the
# peak, 10 GB after the prepare row).
# BENCH_ARGS passes options to bench/bench.py, e.g. BENCH_ARGS="--reps 3 --rows train-step".
BENCH_VENV := bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.nerveseg-bench-setup
bench-venv: $(BENCH_STAMP)
$(BENCH_STAMP): bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r bench/requirements.txt
	touch $@

bench: build bench-venv
	$(BENCH_VENV)/bin/python bench/bench.py --nerveseg target/release/nerveseg $(BENCH_ARGS)

# Regenerates the NumPy-written .npy fixtures (not needed for `make test`).
NPY_FIX := tests/fixtures/npy
fixtures-npy:
	test -x $(NPY_FIX)/.venv/bin/python || $(PYTHON) -m venv $(NPY_FIX)/.venv
	$(NPY_FIX)/.venv/bin/pip install -q numpy
	$(NPY_FIX)/.venv/bin/python $(NPY_FIX)/make_fixtures.py

# Regenerates the tf-keras / Keras 3 weight fixtures (tensorflow-cpu, tf-keras, keras,
# h5py in a venv of their own, about 2 GB; not needed for `make test`).
KERAS_FIX := tests/fixtures/keras
fixtures-keras:
	test -x $(KERAS_FIX)/.venv/bin/python || $(PYTHON) -m venv $(KERAS_FIX)/.venv
	$(KERAS_FIX)/.venv/bin/pip install -q -r $(KERAS_FIX)/requirements.txt
	$(KERAS_FIX)/.venv/bin/python $(KERAS_FIX)/make_fixtures.py
	$(KERAS_FIX)/.venv/bin/python $(KERAS_FIX)/make_train_fixtures.py

# Regenerates the scikit-image resize fixtures (needs the release binary for synth).
PREP_FIX := tests/fixtures/preprocess
fixtures-preprocess: build
	test -x $(PREP_FIX)/.venv/bin/python || $(PYTHON) -m venv $(PREP_FIX)/.venv
	$(PREP_FIX)/.venv/bin/pip install -q -r $(PREP_FIX)/requirements.txt
	$(PREP_FIX)/.venv/bin/python $(PREP_FIX)/make_fixtures.py

# Regenerates the corrected-submission fixtures (numpy + scikit-image).
SUB_FIX := tests/fixtures/submission
fixtures-submission:
	test -x $(SUB_FIX)/.venv/bin/python || $(PYTHON) -m venv $(SUB_FIX)/.venv
	$(SUB_FIX)/.venv/bin/pip install -q -r $(SUB_FIX)/requirements.txt
	$(SUB_FIX)/.venv/bin/python $(SUB_FIX)/make_fixtures.py

# Regenerates the image-decoding fixtures (scikit-image's rgb2gray, Pillow's palettes)
# and the class-1 counts of the three committed usgra-seg masks (CC-BY 4.0; credit in
# tests/fixtures/frames/usgra/README.md).
FRAMES_FIX := tests/fixtures/frames
fixtures-frames:
	test -x $(FRAMES_FIX)/.venv/bin/python || $(PYTHON) -m venv $(FRAMES_FIX)/.venv
	$(FRAMES_FIX)/.venv/bin/pip install -q -r $(FRAMES_FIX)/requirements.txt
	$(FRAMES_FIX)/.venv/bin/python $(FRAMES_FIX)/make_fixtures.py

clean-venv:
	rm -rf $(VENV)

# Fuzzes the readers of untrusted files (fuzz/, see fuzz/README.md) with cargo-fuzz on the
# nightly toolchain; not part of `make test`. Installs cargo-fuzz if missing, copies the
# committed seeds (fuzz/seeds/TARGET) into the corpus folders (fuzz/corpus/TARGET) and runs
# the targets one after another, each for FUZZ_SECONDS seconds (default 1200), keeping on
# past a crash; exits non-zero at the end if any target stopped early. Crashes are saved
# in fuzz/artifacts/TARGET/. The first build compiles libtorch's bindings and HDF5 again
# (10+ minutes on 2 cores).
# FUZZ_SECONDS: seconds per target. FUZZ_TARGETS: which targets (default all seven).
FUZZ_SECONDS ?= 1200
FUZZ_TARGETS ?= npy tiff lzw keras submission image stream
FUZZ_FLAGS := -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -max_total_time=$(FUZZ_SECONDS)
fuzz: setup
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	@failed=""; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/ || exit 1; \
		echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
		RAYON_NUM_THREADS=1 LD_LIBRARY_PATH="$(CURDIR)/$(VENV)/libtorch/lib" \
			cargo +nightly fuzz run --sanitizer none $$t fuzz/corpus/$$t -- $(FUZZ_FLAGS) \
			|| failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: stopped early:$$failed (see fuzz/artifacts/)"; exit 1; fi
