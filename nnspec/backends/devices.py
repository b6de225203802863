"""Where the torch backend computes: `--device cpu|cuda|cuda:N|mps`, by default the best there is.

    device = torch_device("cuda:1")   # a torch.device, or R334 when this machine has no cuda:1
    best_device()                     # "cuda" when a GPU is there, else "mps", else "cpu"

The NumPy backend computes on the CPU only (R330 for another device). Nothing here imports
torch before a device is asked for, so `nnspec check` and the NumPy backend stay torch-free.
"""

from __future__ import annotations

import re

from ..errors import NnspecError

FORMS = "cpu, cuda, cuda:N (N a GPU's number) or mps"
PATTERN = re.compile(r"(cpu|mps|cuda)(:\d+)?")


class DeviceError(NnspecError):
    """R334: a device that is no device name, or one this machine does not have."""


def check_name(name: str) -> str:
    """`name` when it is one of the forms a device takes; R334 else."""
    found = PATTERN.fullmatch(name)
    if found is None or (found.group(2) and found.group(1) != "cuda"):
        raise DeviceError(
            "R334", f"'{name}' is not a device", f"give {FORMS}, or leave --device out"
        )
    return name


def best_device() -> str:
    """The device a run takes when none is asked for: a CUDA GPU, else Apple's mps, else cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def device_name(name: str | None) -> str:
    """The device to use: `name` once checked to be there, or the best available."""
    return str(torch_device(name)) if name is not None else best_device()


def torch_device(name: str | None):
    """`name` (None: cpu) as a torch.device; R334 when this machine does not have it."""
    import torch

    name = check_name(name or "cpu")
    kind, _, number = name.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            built = "built without CUDA" if torch.version.cuda is None else "sees no CUDA GPU"
            raise DeviceError(
                "R334",
                f"device '{name}' is not there: this machine's torch {torch.__version__} {built}",
                f"train on the CPU (--device cpu), or leave --device out for the best "
                f"available (here: {best_device()})",
            )
        if number and int(number) >= count:
            raise DeviceError(
                "R334",
                f"device '{name}' is not there: this machine has {count} CUDA "
                f"GPU{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})",
                f"give a number below {count}, or --device cuda for the first",
            )
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                "R334",
                "device 'mps' is not there: it needs an Apple silicon Mac and a torch built for it",
                f"train on the CPU (--device cpu), or leave --device out for the best "
                f"available (here: {best_device()})",
            )
    return torch.device(name)


def numpy_device(name: str | None) -> None:
    """The NumPy backend computes on the CPU: any other device asked for is R330."""
    if name is not None and check_name(name) != "cpu":
        raise NnspecError(
            "R330",
            f"the numpy backend computes on the CPU only, not on '{name}'",
            f"train with --backend torch on {name}, or leave --device out",
        )


__all__ = ["DeviceError", "best_device", "check_name", "device_name", "torch_device"]
