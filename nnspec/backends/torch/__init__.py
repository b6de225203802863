"""The PyTorch backend: a checked `Program` -> a `torch.nn.Module` with a generated, straight-line
forward.

    net = nnspec.load("model.nn").to_torch()
    y = net(x)                         # or net(**inputs); several outputs come back as a dict
    y, terms = net.forward_with_terms(x)   # terms["kl"]: the KL term of `sample` layers
    print(net.code)                    # the forward it runs

Submodules are PyTorch's own where one fits (nn.Linear, nn.Conv2d, nn.LSTMCell, ...), nested
as the layer names are dotted, so `state_dict()` keys are the spec's parameter names.
"""

from __future__ import annotations

import linecache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...program import Program
from ..init import initial_params
from ..plan import make_plan
from . import runtime
from .codegen import LOWERINGS, generate

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SpecModule(nn.Module):
    """Base of the generated modules; each network gets a subclass with its own `forward`."""

    code: str = ""  # the generated source of forward and forward_with_terms
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    def forward_with_terms(self, *inputs, **named):
        """(outputs, terms): the forward's outputs and the loss terms of its layers,
        {"kl": ...} for `sample`."""
        raise NotImplementedError  # every generated subclass defines it

    def extra_repr(self) -> str:
        return f"inputs={list(self.input_names)}, outputs={list(self.output_names)}"


def to_torch(program: Program, seed: int | None = 0, dtype: str = "float32") -> SpecModule:
    """Lower a checked program;
    parameters drawn from `seed` exactly as the NumPy backend draws them."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    # a layer with a sparsity= penalty hands forward_with_terms its activations at every step
    sparse = tuple(
        layer.name for layer in program.layers if getattr(layer.options, "sparsity", None)
    )
    plan = make_plan(program, keep=sparse)
    generated = generate(plan, reserved=set(dir(SpecModule)))
    namespace = _namespace()
    filename = f"<nnspec {program.name}>"
    linecache.cache[filename] = (
        len(generated.source),
        None,
        generated.source.splitlines(True),
        filename,
    )
    exec(compile(generated.source, filename, "exec"), namespace)
    cls = type(
        program.name,
        (SpecModule,),
        {
            "forward": namespace["forward"],
            "forward_with_terms": namespace["forward_with_terms"],
            "code": generated.source,
            "input_names": program.inputs,
            "output_names": tuple(o.name for o in program.outputs),
            "__module__": __name__,
        },
    )
    net = cls()
    for name, module in generated.modules.items():
        _place(net, name, module)
    net.to(DTYPES[dtype])
    _load_initial(net, program, seed)
    return net


def _namespace() -> dict:
    return {
        "torch": torch,
        "F": F,
        "_VF": torch._VF,
        "_prepare": runtime.prepare,
        "_shift": runtime.shift,
        "_along_time": runtime.along_time,
        "_every_step": runtime.every_step,
        "_zeros": runtime.zeros,
        "_step": runtime.step,
        "_spike": runtime.spike,
        "_argument": runtime.argument,
    }


def _place(root: nn.Module, name: str, module: nn.Module) -> None:
    """Nest `module` at its dotted name: `r.2.b` -> root.r['2'].b, with plain containers between."""
    *path, last = name.split(".")
    parent = root
    for part in path:
        child = parent._modules.get(part)
        if child is None:
            child = nn.Module()
            parent._modules[part] = child
        parent = child
    parent._modules[last] = module  # as add_module, without refusing names such as `eval`


def _load_initial(net: nn.Module, program: Program, seed: int | None) -> None:
    state = net.state_dict()
    values = initial_params(program, seed, np.float64)
    with torch.no_grad():
        for name, value in values.items():
            state[name].copy_(torch.from_numpy(value))
    frozen = {
        name
        for name, param in program.parameters().items()
        if not param.trainable and not param.buffer
    }
    for name, param in net.named_parameters():
        if name in frozen:
            param.requires_grad_(False)


__all__ = ["LOWERINGS", "SpecModule", "to_torch"]
