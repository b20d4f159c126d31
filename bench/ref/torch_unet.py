"""The tutorial's U-Net, Dice loss and Keras-form Adam in PyTorch eager, timed.

The PyTorch side of nerveseg's A/B timings.

The model is get_unet (7,759,521 parameters, NCHW): 3x3 'same' convs with ReLU, 2x2 max
pooling, 2x2 stride-2 transposed convs, concatenation (upsampled, skip), a 1x1 conv with
sigmoid; Keras's glorot_uniform kernels and zero biases. Loss = -dice over the whole
batch (smooth 1). Inputs are model-ready float32 (N, 96, 96, 1) .npy files (from
preprocess.py --save-images/--save-masks), transposed once to (N, 1, 96, 96).

Subcommands:
  train-step  time single training steps (zero_grad, forward, loss, backward, step)
  infer       time forward passes under inference_mode
  train       the whole Keras-equivalent fit loop (validation split, shuffling, epochs)

Precision: TF32 is OFF unless --tf32, so CUDA float32 is true float32 (nerveseg's
parity mode). Last stdout line is one JSON object; progress goes to stderr.
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import (
    add_inputs,
    add_timing_subcommands,
    cycling_batch,
    emit,
    log,
    time_runs,
    timing_summary,
)
from common import load_model_ready as load_array

SMOOTH = 1.0
PARAMS = 7_759_521


# --------------------------------------------------------------------------- model


def unit(c_in, c_out, norm, act):
    """One convolution unit: Conv2D + activation, or with norm="batch" Conv2D, Keras's
    BatchNormalization (epsilon 1e-3, momentum 0.99, i.e. PyTorch's 0.01) and the
    activation, as nerveseg's --norm batch."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01))
    layers.append(nn.ELU(inplace=True) if act == "elu" else nn.ReLU(inplace=True))
    return layers


def double_conv(c_in, c_out, norm=None, act="relu", dropout=0.0):
    layers = unit(c_in, c_out, norm, act) + unit(c_out, c_out, norm, act)
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))  # Keras's SpatialDropout2D
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """get_unet of the tutorial, in its layer order (Keras names in comments); with
    norm, act and dropout, nerveseg's --norm, --activation and --dropout variants
    (dropout after each encoder level)."""

    def __init__(self, width=32, norm=None, act="relu", dropout=0.0):
        super().__init__()
        w = width
        enc = dict(norm=norm, act=act, dropout=dropout)
        dec = dict(norm=norm, act=act)
        self.down1 = double_conv(1, w, **enc)            # conv2d 1-2
        self.down2 = double_conv(w, 2 * w, **enc)        # conv2d 3-4
        self.down3 = double_conv(2 * w, 4 * w, **enc)    # conv2d 5-6
        self.down4 = double_conv(4 * w, 8 * w, **enc)    # conv2d 7-8
        self.bottom = double_conv(8 * w, 16 * w, **enc)  # conv2d 9-10
        self.up6 = nn.ConvTranspose2d(16 * w, 8 * w, 2, stride=2)
        self.conv6 = double_conv(16 * w, 8 * w, **dec)   # conv2d 11-12
        self.up7 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2)
        self.conv7 = double_conv(8 * w, 4 * w, **dec)    # conv2d 13-14
        self.up8 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.conv8 = double_conv(4 * w, 2 * w, **dec)    # conv2d 15-16
        self.up9 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.conv9 = double_conv(2 * w, w, **dec)        # conv2d 17-18
        self.out = nn.Conv2d(w, 1, 1)                    # conv2d 19
        self.reset_parameters_like_keras()

    def reset_parameters_like_keras(self):
        """glorot_uniform kernels and zero biases (PyTorch's defaults differ). Keras's
        fans are kh*kw*in and kh*kw*out, so only their sum matters, which is what
        xavier_uniform_ uses for Conv2d and ConvTranspose2d alike."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def logits(self, x):                                          # [N, 1, 96, 96]
        c1 = self.down1(x)                                        # [N, 32, 96, 96]
        c2 = self.down2(F.max_pool2d(c1, 2))                      # [N, 64, 48, 48]
        c3 = self.down3(F.max_pool2d(c2, 2))                      # [N, 128, 24, 24]
        c4 = self.down4(F.max_pool2d(c3, 2))                      # [N, 256, 12, 12]
        c5 = self.bottom(F.max_pool2d(c4, 2))                     # [N, 512, 6, 6]
        c6 = self.conv6(torch.cat([self.up6(c5), c4], dim=1))     # [N, 256, 12, 12]
        c7 = self.conv7(torch.cat([self.up7(c6), c3], dim=1))     # [N, 128, 24, 24]
        c8 = self.conv8(torch.cat([self.up8(c7), c2], dim=1))     # [N, 64, 48, 48]
        c9 = self.conv9(torch.cat([self.up9(c8), c1], dim=1))     # [N, 32, 96, 96]
        return self.out(c9)                                       # [N, 1, 96, 96]

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


def dice_coef(y_true, y_pred):
    """(2 sum(t p) + 1) / (sum(t) + sum(p) + 1) over the whole flattened batch."""
    t = y_true.reshape(-1)
    p = y_pred.reshape(-1).float()
    intersection = (t * p).sum()
    return (2.0 * intersection + SMOOTH) / (t.sum() + p.sum() + SMOOTH)


def loss_of(kind, y_true, logits):
    """nerveseg's --loss: dice (-dice_coef), image-dice (-(mean of each image's soft
    Dice)) or bce-dice (mean BCE from the logits + 1 - dice_coef)."""
    pred = torch.sigmoid(logits.float())
    if kind == "image-dice":
        t, p = y_true.flatten(1), pred.flatten(1)
        return -((2.0 * (t * p).sum(1) + SMOOTH) / (t.sum(1) + p.sum(1) + SMOOTH)).mean()
    if kind == "bce-dice":
        bce = F.binary_cross_entropy_with_logits(logits.float(), y_true)
        return bce + 1.0 - dice_coef(y_true, pred)
    return -dice_coef(y_true, pred)


# ----------------------------------------------------------------------- optimiser


class KerasAdam:
    """Adam as Keras writes it: eps outside the bias correction.

    alpha = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    w -= alpha m / (sqrt(v) + eps). With Dice-loss gradients far below eps this is not
    the same update as torch.optim.Adam's, so parity needs this form. Uses the
    multi-tensor _foreach_ ops, as torch.optim does by default.
    """

    def __init__(self, params, lr=1e-5, beta1=0.9, beta2=0.999, eps=1e-7):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.t += 1
        alpha = self.lr * math.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)
        grads = [p.grad for p in self.params]
        torch._foreach_lerp_(self.m, grads, 1.0 - self.beta1)
        torch._foreach_lerp_(self.v, torch._foreach_mul(grads, grads), 1.0 - self.beta2)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, value=-alpha)


def make_optimizer(kind, model):
    if kind == "keras":
        return KerasAdam(model.parameters())
    return torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-7)


# --------------------------------------------------------------------------- setup


def configure(args):
    """Threads, precision and cuDNN flags; returns the torch.device."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available to PyTorch")
    torch.manual_seed(args.seed)
    return torch.device(args.device)


def memory_format(args):
    return torch.channels_last if args.channels_last else torch.contiguous_format


def load_model_ready(path, device, args, what):
    """float32 (N, 96, 96, 1) .npy -> (N, 1, 96, 96) tensor on the device, once."""
    t = torch.from_numpy(load_array(path, what)).permute(0, 3, 1, 2).contiguous()
    return t.to(device).contiguous(memory_format=memory_format(args))


def build_model(device, args):
    norm = getattr(args, "norm", "none")
    variant = dict(norm=None if norm == "none" else norm, act=getattr(args, "activation", "relu"),
                   dropout=getattr(args, "dropout", 0.0))
    model = UNet(getattr(args, "base_width", 32), **variant)
    model = model.to(device).to(memory_format=memory_format(args))
    n = sum(p.numel() for p in model.parameters())
    if variant == dict(norm=None, act="relu", dropout=0.0) and model.out.in_channels == 32:
        assert n == PARAMS, f"parameter count {n} != {PARAMS}"
    return model


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, args):
    """bf16 autocast for the forward with --amp; a disabled context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)


def take(x, idx, device, args):
    """One batch, gathered before the clock starts."""
    xb = x.index_select(0, torch.tensor(idx, device=device))
    return xb.contiguous(memory_format=memory_format(args))


# ------------------------------------------------------------------- subcommands


def train_step(args):
    device = configure(args)
    x = load_model_ready(args.images, device, args, "images")
    y = load_model_ready(args.masks, device, args, "masks")
    if len(x) != len(y):
        raise SystemExit(f"{len(x)} images but {len(y)} masks")
    model = build_model(device, args)
    model.train()
    opt = make_optimizer(args.optim, model)
    b = args.batch_size

    def batch(k):
        idx = cycling_batch(k, b, len(x))
        xb, yb = take(x, idx, device, args), take(y, idx, device, args)
        sync(device)
        return xb, yb

    def step(xy):
        xb, yb = xy
        opt.zero_grad()
        with autocast(device, args):
            logits = model.logits(xb)
        loss = loss_of(args.loss, yb, logits)
        loss.backward()
        opt.step()
        sync(device)

    seconds = time_runs(args.warmup, args.steps, batch, step, "step")
    emit(timing_summary("train-step", "pytorch", b, torch.get_num_threads(), args.device,
                        "step_seconds", seconds))


def infer(args):
    device = configure(args)
    x = load_model_ready(args.images, device, args, "images")
    model = build_model(device, args)
    model.eval()
    b = args.batch_size

    def batch(k):
        xb = take(x, cycling_batch(k, b, len(x)), device, args)
        sync(device)
        return xb

    def forward(xb):
        with autocast(device, args):
            model(xb)
        sync(device)

    with torch.inference_mode():
        seconds = time_runs(args.warmup, args.batches, batch, forward, "batch")
    emit(timing_summary("infer", "pytorch", b, torch.get_num_threads(), args.device,
                        "batch_seconds", seconds))


def conv_flops(model, x):
    """Floating-point operations (a multiply-add counts 2) of the convolutions for one
    image of x's size, by the side of each convolution's output: what float32 arithmetic
    must do at each level, whatever the library."""
    by_side = {}

    def count(mod, inp, out):
        k = mod.weight[0].numel()  # in * kh * kw (Conv2d) or out * kh * kw (transposed)
        conv = isinstance(mod, nn.Conv2d)
        sites = out[0, 0].numel() if conv else inp[0][0, 0].numel()
        side = out.shape[-1]
        by_side[side] = by_side.get(side, 0) + 2 * k * (
            mod.out_channels if conv else mod.in_channels) * sites

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.inference_mode():
        model(x[:1])
    for h in hooks:
        h.remove()
    return by_side


def peak(args):
    """This CPU's float32 convolution ceiling for the U-Net as libtorch reaches it:
    oneDNN's 3x3 convolution alone, channels-last, batch 32, at each level's c -> c shape
    of the width-32 U-Net (32 channels at 96 x 96, 64 at 48 x 48, .., 512 at 6 x 6), timed
    like a batch. The ceiling is a forward pass whose convolutions at each level all run
    at that level's rate, with nothing else costing time: its seconds an image are the
    sum over levels of the level's FLOPs over the level's rate."""
    device = configure(args)
    x = load_model_ready(args.images, device, args, "images")
    flops = conv_flops(build_model(device, args).eval(), x)
    rates = {}
    for c, side in [(32, 96), (64, 48), (128, 24), (256, 12), (512, 6)]:
        xs = torch.randn(32, c, side, side, device=device)
        xs = xs.contiguous(memory_format=torch.channels_last)
        w = (0.02 * torch.randn(c, c, 3, 3, device=device))
        w = w.contiguous(memory_format=torch.channels_last)

        def conv(_):
            F.conv2d(xs, w, None, padding=1)
            sync(device)

        with torch.inference_mode():
            seconds = time_runs(args.warmup, args.batches, lambda k: None, conv, "conv")
        rates[side] = 2 * 32 * c * c * 9 * side * side / statistics.median(seconds) / 1e9
    scale = x.shape[-1] / 96  # another input size: its levels in the same order
    level = {side: min(rates, key=lambda r: abs(r * scale - side)) for side in flops}
    per_image = sum(f / 1e9 / rates[level[side]] for side, f in flops.items())
    total = sum(flops.values()) / 1e9
    emit({"stage": "peak", "framework": "pytorch", "threads": torch.get_num_threads(),
          "device": args.device, "conv_gflops": {f"{s}": r for s, r in rates.items()},
          "peak_gflops": total / per_image, "gflop_per_image": total, "median_s": per_image})


def stream(args):
    """The network alone on one frame at a time (batch 1), as a live stream runs it:
    per-frame latency (forward and sigmoid, inference_mode) over --frames frames of the
    model-ready array, cycling; frames/s over the whole loop."""
    device = configure(args)
    x = load_model_ready(args.images, device, args, "images")
    model = build_model(device, args).eval()
    latencies = []
    with torch.inference_mode():
        for k in range(args.warmup + args.frames):
            xb = x[k % len(x)].unsqueeze(0).contiguous(memory_format=memory_format(args))
            t0 = time.perf_counter()
            with autocast(device, args):
                model(xb)
            sync(device)
            if k >= args.warmup:
                latencies.append(time.perf_counter() - t0)
    lat = sorted(latencies)
    p99 = lat[max(0, math.ceil(0.99 * len(lat)) - 1)]
    emit({"stage": "stream", "framework": "pytorch", "threads": torch.get_num_threads(),
          "device": args.device, "frames": len(lat), "fps": len(lat) / sum(lat),
          "latency_median_ms": 1e3 * float(statistics.median(lat)), "latency_p99_ms": 1e3 * p99})


def run_epoch(model, opt, x, y, order, batch_size, args, device, training):
    """One pass over x[order] in batches. Returns device tensors (sum of batch losses
    weighted by batch size, sum of batch dice, number of batches) so the loop never
    waits for the device; Keras averages loss by samples and dice_coef by batches."""
    loss_sum = torch.zeros((), device=device)
    dice_sum = torch.zeros((), device=device)
    n_batches = 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        if training:
            opt.zero_grad()
        with autocast(device, args):
            pred = model(xb)
        dice = dice_coef(yb, pred)
        loss = -dice
        if training:
            loss.backward()
            opt.step()
        loss_sum += loss.detach() * len(idx)
        dice_sum += dice.detach()
        n_batches += 1
    return loss_sum, dice_sum, n_batches


def train(args):
    device = configure(args)
    x = load_model_ready(args.images, device, args, "images")
    y = load_model_ready(args.masks, device, args, "masks")
    n = len(x)
    if len(y) != n:
        raise SystemExit(f"{n} images but {len(y)} masks")
    # Keras's validation_split: the LAST share of the samples in file order, taken
    # before any shuffling; only the first floor(n * (1 - split)) are trained on.
    n_train = int(math.floor(n * (1.0 - args.validation_split)))
    if n_train == 0 or n_train == n:
        raise SystemExit(f"validation split {args.validation_split} of {n} samples leaves "
                         f"{n_train} to train and {n - n_train} to validate")
    val_order = torch.arange(n_train, n, device=device)
    model = build_model(device, args)
    opt = make_optimizer(args.optim, model)
    gen = torch.Generator().manual_seed(args.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    log(f"train on {n_train} samples, validate on {n - n_train} samples")

    epoch_seconds, val_loss, val_dice = [], [], []
    best = math.inf
    sync(device)
    t_start = time.perf_counter()
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n_train, generator=gen).to(device, non_blocking=True)
        model.train()
        tr = run_epoch(model, opt, x, y, order, args.batch_size, args, device, True)
        model.eval()
        with torch.no_grad():
            va = run_epoch(model, None, x, y, val_order, args.batch_size, args, device, False)
        # The one host sync of the epoch.
        tl, td, vl, vd = torch.stack([tr[0], tr[1], va[0], va[1]]).tolist()
        loss, dice = tl / n_train, td / tr[2]
        v_loss, v_dice = vl / (n - n_train), vd / va[2]
        if args.checkpoint and v_loss < best:
            torch.save(model.state_dict(), args.checkpoint)  # save best only, as the tutorial
        best = min(best, v_loss)
        dt = time.perf_counter() - t0
        epoch_seconds.append(dt)
        val_loss.append(v_loss)
        val_dice.append(v_dice)
        log(f"epoch {epoch + 1}/{args.epochs} {dt:.2f} s - loss {loss:.4f} - dice_coef "
            f"{dice:.4f} - val_loss {v_loss:.4f} - val_dice_coef {v_dice:.4f}")
    total = time.perf_counter() - t_start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    emit({
        "stage": "train",
        "framework": "pytorch",
        "device": args.device,
        "epochs": args.epochs,
        "epoch_seconds": epoch_seconds,
        "total_seconds": total,
        "val_loss": val_loss,
        "val_dice_coef": val_dice,
        "best_val_dice_coef": max(val_dice),
        "peak_gpu_mem_mib": peak,
    })


# ---------------------------------------------------------------------------- CLI


def add_common(p):
    p.add_argument("--threads", type=int, metavar="T",
                   help="torch.set_num_threads(T) (default: PyTorch's default)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: cpu")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the initial weights (and the shuffling) (default: 0)")
    p.add_argument("--batch-size", type=int, default=32, metavar="B", help="default: 32")
    p.add_argument("--optim", choices=["keras", "torch"], default="keras",
                   help="keras: Adam in Keras's form (eps outside the bias correction), "
                        "foreach ops; torch: torch.optim.Adam(lr=1e-5, eps=1e-7) "
                        "(default: keras)")
    p.add_argument("--channels-last", action="store_true",
                   help="model and inputs in torch.channels_last memory format")
    p.add_argument("--amp", action="store_true",
                   help="autocast the forward to bfloat16 (the loss stays float32)")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 in cuDNN and matmuls (default: off, true float32)")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="torch.backends.cudnn.benchmark = True (default: False)")
    # nerveseg's model family: the same flags as `nerveseg bench train-step`.
    p.add_argument("--base-width", type=int, default=32, help="default: 32")
    p.add_argument("--norm", choices=["none", "batch"], default="none",
                   help="BatchNorm after each 3x3 conv (Keras's eps and momentum)")
    p.add_argument("--activation", choices=["relu", "elu"], default="relu")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="Dropout2d after each encoder level, in training")
    p.add_argument("--loss", choices=["dice", "image-dice", "bce-dice"], default="dice")
    p.add_argument("--input-size", metavar="HxW",
                   help="accepted for nerveseg's flags; the arrays' size decides")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    add_timing_subcommands(sub, add_common, train_step, infer,
                           "time single training steps",
                           "time forward passes (eval, inference_mode)")

    p = sub.add_parser("peak", help="oneDNN's float32 3x3 conv GFLOP/s and the U-Net's conv "
                                    "FLOPs per image (the ceiling beside the infer row)")
    add_inputs(p, masks=False)
    p.add_argument("--warmup", type=int, default=2, help="untimed convolutions per shape first (default: 2)")
    p.add_argument("--batches", type=int, default=10, help="timed convolutions per shape (default: 10)")
    add_common(p)
    p.set_defaults(func=peak)

    p = sub.add_parser("stream", help="one frame at a time (batch 1): frames/s and latency")
    add_inputs(p, masks=False)
    p.add_argument("--warmup", type=int, default=10, help="untimed frames first (default: 10)")
    p.add_argument("--frames", type=int, default=300, help="timed frames (default: 300)")
    add_common(p)
    p.set_defaults(func=stream)

    p = sub.add_parser("train", help="the Keras-equivalent fit loop")
    add_inputs(p)
    p.add_argument("--epochs", type=int, default=20, help="default: 20")
    p.add_argument("--validation-split", type=float, default=0.2,
                   help="the last share of the samples validates (default: 0.2)")
    p.add_argument("--checkpoint", metavar="F",
                   help="torch.save the state_dict here whenever val_loss improves, as the "
                        "tutorial's ModelCheckpoint (default: no checkpoint)")
    add_common(p)
    p.set_defaults(func=train)

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
