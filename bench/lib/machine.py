"""What the header says about the machine: CPU, cores, RAM, GPU, the CPU's SIMD flags,
nerveseg's version and the reference Python's packages. The bf16 variants of train-step
and infer ask it whether the CPU has bfloat16 instructions."""

import os
import platform
import shutil
import subprocess
import unittest

from lib.runner import last_json_line

# The /proc/cpuinfo flags that decide how fast convolutions can be, in the header's order.
SIMD_FLAGS = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni"]
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cpu_flags(cpuinfo=None):
    """The flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    text = read_file("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def simd_flags(flags):
    """The SIMD_FLAGS among `flags`, in SIMD_FLAGS order."""
    return [f for f in SIMD_FLAGS if f in flags]


def has_bf16(flags):
    return bool(BF16_FLAGS & set(flags))


def describe_flags(flags):
    """The header's 'cpu flags' line: 'avx2, avx512f (no bf16 in hardware)'."""
    present = simd_flags(flags)
    listed = ", ".join(present) if present else "none of " + ", ".join(SIMD_FLAGS)
    return f"{listed} ({'bf16 in hardware' if has_bf16(flags) else 'no bf16 in hardware'})"


def bf16_skip_reason(args, row):
    """Why `row` skips its bf16 variants, or None when they run: on a CPU without bf16
    instructions libtorch emulates bfloat16, which times the emulation, not the format."""
    flags = cpu_flags()
    if args.bf16_anyway or has_bf16(flags):
        return None
    present = ", ".join(simd_flags(flags)) or "none of " + ", ".join(SIMD_FLAGS)
    return (f"{row}: bf16 variants skipped: this CPU has no bf16 instructions "
            f"(flags: {present}; --bf16-anyway runs them)")


def machine_info():
    cpu = next((l.split(":", 1)[1].strip() for l in read_file("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), platform.processor() or "unknown CPU")
    ram = next((int(l.split()[1]) for l in read_file("/proc/meminfo").splitlines()
                if l.startswith("MemTotal:")), None)
    gpu = "none"
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=20).stdout.strip()
            gpu = "; ".join(out.splitlines()) or "none (nvidia-smi found no GPU)"
        except (OSError, subprocess.TimeoutExpired):
            gpu = "unknown (nvidia-smi failed)"
    ram_txt = f"{ram / 1024 / 1024:.0f} GiB RAM" if ram else "RAM unknown"
    return f"{cpu}, {os.cpu_count()} cores, {ram_txt}; GPU: {gpu}"


VERSIONS_SNIPPET = r"""
import json, sys
from importlib import metadata
out = {"python": sys.version.split()[0]}
for label, dists in [("torch", ["torch"]), ("tensorflow", ["tensorflow-cpu", "tensorflow"]),
                     ("tf-keras", ["tf-keras"]), ("numpy", ["numpy"]),
                     ("scikit-image", ["scikit-image"])]:
    v = None
    for d in dists:
        try:
            v = metadata.version(d); break
        except metadata.PackageNotFoundError:
            pass
    out[label] = v or "not installed"
if "--cuda" in sys.argv:
    try:
        import torch
        out["cuda"] = bool(torch.cuda.is_available())
    except Exception as e:
        out["cuda"] = False
        out["cuda_error"] = str(e)
print(json.dumps(out))
"""


def reference_versions(python, want_cuda):
    cmd = [python, "-c", VERSIONS_SNIPPET] + (["--cuda"] if want_cuda else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return last_json_line(r.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return {"python": f"unknown ({e})", "cuda": False}


def nerveseg_version(nerveseg):
    try:
        r = subprocess.run([nerveseg, "--version"], capture_output=True, text=True, timeout=60)
        return r.stdout.strip() or r.stderr.strip()
    except OSError as e:
        return f"cannot run {nerveseg}: {e}"


class Tests(unittest.TestCase):
    CPUINFO = ("processor\t: 0\nmodel name\t: Some CPU\n"
               "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni\n\n"
               "processor\t: 1\nflags\t\t: fpu\n")

    def test_flags(self):
        flags = cpu_flags(self.CPUINFO)
        self.assertIn("avx512f", flags)
        self.assertNotIn("avx512", flags)
        self.assertEqual(simd_flags(flags), ["avx2", "avx512f", "avx512_vnni"])
        self.assertFalse(has_bf16(flags))
        self.assertEqual(describe_flags(flags), "avx2, avx512f, avx512_vnni (no bf16 in hardware)")
        self.assertTrue(has_bf16(flags | {"amx_bf16"}))
        self.assertEqual(describe_flags({"avx512_bf16"}), "avx512_bf16 (bf16 in hardware)")
        self.assertEqual(cpu_flags(""), set())
        self.assertTrue(describe_flags(set()).startswith("none of avx2, "))
