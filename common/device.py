"""Torch devices: what ``--device`` accepts, and whether a device computes bfloat16 natively."""
from __future__ import annotations

import contextlib
import re

import torch

from common.errors import InputError

PRECISIONS = ("fp32", "bf16")  # what inference runs the network in (bf16: bfloat16 autocast)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``, ``cuda``, ``cuda:N``, ``mps``. Anything else,
    or a device this machine does not have, is an :class:`InputError`."""
    name = str(name).strip().lower()
    if not _DEVICE.match(name):
        raise InputError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r} asked for, but no CUDA device is available")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' asked for, but Metal is not available")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (a CUDA GPU, or a CPU with AVX512-BF16 or
    AMX); elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch before 2.3 had no emulation to count
            return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set to ``threads`` for a block (unchanged when None) and
    restored after: a library call must not leave the caller's process-wide setting changed."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
