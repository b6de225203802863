"""Checkpoints: a run's whole state after an epoch, in one safetensors file replaced at once, with
what it takes to recognise the run it belongs to.

    saved = read(out)                   # CheckpointError: none there (R311), damaged (R310)
    saved.check_flags(backend, given)   # a flag that contradicts the run (R302)
    saved.check_settings(config)        # the spec's train section changed (R302)
    saved.check_layout(name, layout)    # another network, another version of the spec (R302)
    saved.check_layers(name, layers)    # a layer's kind, options or links changed (R302)

Besides the arrays (weights, optimizer state) the metadata records the epoch, the backend, the
network's name, parameter layout (every tensor's name and shape) and layers (a digest of each
layer's kind, options and inputs), the train settings a resume
must keep (`KEPT`), the command line's overrides (so that a resume repeats them), the random
states, and a SHA-256 digest of all of it, so that flipped bytes are found and not trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load, save_file

from ..atomic import write_atomic
from ..program import layer_changes
from ..reading import DATA_LIMIT, ReadError, read_regular
from ..train_section import TrainConfig
from .stopped import TrainingStopped

CHECKPOINT = "checkpoint.safetensors"
FORMAT = 3  # 1: before the checkpoint recorded its network, settings and digest; 2: its layers
# the settings a resumed run keeps: another value would make it another run; epochs, metrics and
# expect lines may change (training on for more epochs is what --resume is for)
KEPT = ("data", "split", "target", "loss", "optimizer", "batch", "schedule", "rule", "seed")
AFRESH = "train afresh into another folder (--out DIR)"


class CheckpointError(TrainingStopped):
    """A checkpoint that cannot be resumed: damaged (R310), not there (R311), or one that belongs
    to another run (R302: another backend, network, version of the spec, or settings)."""


@dataclass(frozen=True)
class Record:
    """What a checkpoint records to be recognised, besides the backend and the layout."""

    network: str
    settings: dict  # KEPT, as settings.json writes them
    overrides: dict = field(default_factory=dict)  # epochs, lr, batch, seed given by the caller
    layers: dict = field(default_factory=dict)  # layer name -> digest of its definition


def kept_settings(config: TrainConfig) -> dict:
    """The settings of `config` that a resume must keep, as plain JSON values."""
    written = config.as_dict()
    plain = {"data": str(config.data), "split": config.split, "target": config.target}
    kept = {key: plain[key] if key in plain else written[key] for key in KEPT}
    # several outputs' weights, only when given: a checkpoint written before them still matches
    kept |= {"loss_weights": written["loss_weights"]} if config.loss_weights else {}
    # the pretraining stage, only when given (its weights are in the checkpoint: a resumed run
    # never pretrains again, and one whose stage differs is another run)
    return kept | ({"pretrain": written["pretrain"]} if config.pretrain else {})


def layout_of(weights: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Every tensor's name and shape: how a checkpoint recognises the network it was made by."""
    return {name: list(np.shape(value)) for name, value in weights.items()}


# ---- writing -------------------------------------------------------------------------------------
def save(out: Path, arrays: dict[str, np.ndarray], state: dict) -> None:
    """Write `arrays` and `state` (plain JSON values) with their digest, replacing the last
    checkpoint at once: a kill at any moment leaves the last whole checkpoint."""
    # np.ascontiguousarray gives a 0-d array (batchnorm's num_batches_tracked) one axis
    arrays = {k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in arrays.items()}
    state = {"format": FORMAT, **state}
    text = json.dumps(state, default=_plain)
    state["digest"] = _digest(json.loads(text), arrays)
    metadata = {"nnspec": json.dumps(state, default=_plain)}
    write_atomic(out / CHECKPOINT, lambda p: save_file(arrays, p, metadata=metadata))


def _digest(state: dict, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the state (keys sorted) and every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode())
    for name in sorted(arrays):
        value = arrays[name]
        digest.update(f"{name}|{value.dtype.str}|{list(value.shape)}|".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


# ---- reading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Saved:
    """A checkpoint read whole and found undamaged."""

    path: Path
    state: dict
    arrays: dict[str, np.ndarray]

    @property
    def epoch(self) -> int:
        return self.state["epoch"]

    @property
    def backend(self) -> str:
        return self.state["backend"]

    @property
    def overrides(self) -> dict:
        return self.state["overrides"]

    def check_flags(self, backend: str | None, given: dict) -> None:
        """Refuse a --backend, --lr, --batch or --seed that differs from the run's (R302)."""
        if backend is not None and backend != self.backend:
            raise CheckpointError(
                "R302",
                f"the checkpoint in {self.path.parent} was made by the {self.backend} backend, "
                f"not {backend}",
                f"resume with --backend {self.backend} (or leave --backend out: a resumed run "
                f"keeps its backend), or {AFRESH}",
            )
        settings = self.state["settings"]
        had = {
            "lr": settings["optimizer"]["lr"],
            "batch": settings["batch"],
            "seed": settings["seed"],
        }
        for key, value in given.items():
            if key in had and value is not None and value != had[key]:
                raise CheckpointError(
                    "R302",
                    f"--{key} {value:g} contradicts the run in {self.path.parent}, which was "
                    f"trained with {key} {had[key]}",
                    f"leave out --{key}: a resumed run keeps the settings it was trained with; "
                    f"or {AFRESH}",
                )

    def check_settings(self, config: TrainConfig) -> None:
        """Refuse a train section that changed since the checkpoint (R302), and --epochs below
        the epoch already reached."""
        before, now = self.state["settings"], kept_settings(config)
        keys = (*KEPT, "loss_weights")
        changed = [key for key in keys if _json(before.get(key)) != _json(now.get(key))]
        if changed:
            shown = "; ".join(
                f"{key} was {_shown(before.get(key, {}))}, is now {_shown(now.get(key, {}))}"
                for key in changed
            )
            raise CheckpointError(
                "R302",
                f"the train section changed since the checkpoint in {self.path.parent} was "
                f"written: {shown}",
                f"undo the change to resume the run (only epochs may change), or {AFRESH}",
            )
        if config.epochs < self.epoch:
            raise CheckpointError(
                "R302",
                f"the run in {self.path.parent} is already at epoch {self.epoch}, past the "
                f"{config.epochs} epochs asked for",
                f"give --epochs {self.epoch} or more to resume it, or {AFRESH}",
            )

    def check_layout(self, network: str, layout: dict[str, list[int]]) -> None:
        """Refuse a checkpoint of another network, or of another version of this one: names each
        tensor that differs, with its shape here and in the checkpoint (R302)."""
        where = self.path.parent
        if self.state["network"] != network:
            raise CheckpointError(
                "R302",
                f"the checkpoint in {where} belongs to network '{self.state['network']}', "
                f"not '{network}'",
                f"resume it with the spec of '{self.state['network']}', or {AFRESH}",
            )
        theirs = self.state["layout"]
        differences = [
            f"'{name}' is {shape} here and {theirs[name]} in the checkpoint"
            for name, shape in layout.items()
            if name in theirs and shape != theirs[name]
        ]
        differences += [
            f"'{n}' {s} is not in the checkpoint" for n, s in layout.items() if n not in theirs
        ]
        differences += [
            f"the checkpoint's '{n}' {s} is not in this network"
            for n, s in theirs.items()
            if n not in layout
        ]
        if differences:
            more = f"; and {len(differences) - 4} more" if len(differences) > 4 else ""
            raise CheckpointError(
                "R302",
                f"the checkpoint in {where} was written by another version of network "
                f"'{network}' (its layers or sizes changed): {'; '.join(differences[:4])}{more}",
                f"undo the change to the spec to resume the run, or {AFRESH}",
            )

    def check_layers(self, network: str, layers: dict[str, str]) -> None:
        """Refuse a checkpoint of a version of the network whose layers changed in a way its
        parameter layout does not show (an activation, an option, a link; R302)."""
        changed = layer_changes(layers, self.state["layers"])
        if changed:
            raise CheckpointError(
                "R302",
                f"the checkpoint in {self.path.parent} was written by another version of network "
                f"'{network}' (its kinds, options or links changed): {changed}",
                f"undo the change to the spec to resume the run, or {AFRESH}",
            )


def read(out: Path) -> Saved:
    """The checkpoint in `out`, read whole (only a regular file) and checked against its digest."""
    path = out / CHECKPOINT
    try:
        data = read_regular(path, "checkpoint", DATA_LIMIT, "R310")
    except ReadError as error:
        if error.reason == "missing":
            raise CheckpointError(
                "R311",
                f"there is nothing to resume: {out} holds no checkpoint",
                "a checkpoint is written once the first epoch ends; train without --resume to "
                "start the run",
            ) from None
        raise CheckpointError("R310", f"{error.message}: it cannot be resumed", AFRESH) from None
    try:
        arrays, metadata = parse(data)
    except (SafetensorError, ValueError) as error:
        raise _damaged(path, f"it is not a whole safetensors file ({error})") from None
    try:
        state = json.loads(metadata["nnspec"])
    except (KeyError, TypeError, ValueError):
        raise _damaged(path, "it records no run state") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            "R310",
            f"the checkpoint {path} was written by an older nnspec, or by another program: it "
            "does not record the run it belongs to",
            AFRESH,
        )
    digest = state.pop("digest", None)
    if digest != _digest(state, arrays):
        raise _damaged(path, "its contents do not match the digest it was written with")
    try:
        _State.model_validate(state)
    except ValidationError as error:  # a digest made anew over a state nnspec did not write
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the state"
        raise _damaged(
            path, f"its state is not one nnspec writes ({where}: {problem['msg'].lower()})"
        ) from None
    return Saved(path, state, arrays)


# ---- what a checkpoint's state must hold ---------------------------------------------------------
# Checked after the digest, so only a file that another program wrote (with a digest of its own
# making) can fail here: every value the resume reads is there and of its type, so that none
# can fail later, mid-resume. Keys nnspec does not read are let be.
Count = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]
STRICT = ConfigDict(strict=True, extra="allow")


class _Optimizer(BaseModel):
    model_config = STRICT
    name: str
    lr: Rate


class _Settings(BaseModel):  # KEPT: compared with the spec's; the optimizer's lr, batch and seed
    model_config = STRICT  # are also compared with the command line's flags
    data: Any
    split: Any
    target: Any
    loss: Any
    optimizer: _Optimizer
    batch: Annotated[int, Field(ge=1)] | Literal["full"]
    schedule: Any
    rule: Any
    seed: Count


class _Overrides(BaseModel):  # what the command line gave, repeated by the resume
    model_config = ConfigDict(strict=True, extra="forbid")
    epochs: Count | None = None
    lr: Rate | None = None
    batch: Annotated[int, Field(ge=1)] | None = None
    seed: Count | None = None


class _Counter(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    state: Annotated[int, Field(ge=0, lt=2**128)]
    inc: Annotated[int, Field(ge=0, lt=2**128)]


class _Random(BaseModel):  # NumPy's PCG64 state, as `bit_generator.state` gives and takes it
    model_config = ConfigDict(strict=True, extra="forbid")
    bit_generator: Literal["PCG64"]
    state: _Counter
    has_uint32: Annotated[int, Field(ge=0, le=1)]
    uinteger: Annotated[int, Field(ge=0, lt=2**32)]


class _Runner(BaseModel):  # the runner's own (a NumPy runner's random state; torch's optimizer)
    model_config = STRICT
    random: _Random | None = None


class _State(BaseModel):
    model_config = STRICT
    format: int
    epoch: Count
    backend: Literal["torch", "numpy"]
    network: str
    layout: dict[str, list[Count]]
    layers: dict[str, str]
    settings: _Settings
    overrides: _Overrides
    random: _Random
    runner: _Runner


def parse(data: bytes) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the metadata of a safetensors file's bytes. Raises SafetensorError or
    ValueError on anything else."""
    try:
        arrays = load(data)  # checks the header, the offsets and the length
    except KeyError as error:  # safetensors' name of a dtype NumPy has not (BF16, F8_E4M3)
        raise ValueError(
            f"it holds a tensor of dtype {error}, which nnspec does not write"
        ) from None
    # the layout safetensors defines: an 8-byte little-endian length, then that much JSON
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return arrays, metadata if isinstance(metadata, dict) else {}


def _damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        "R310",
        f"the checkpoint is damaged: {path}: {why}",
        f"the run cannot go on from it: {AFRESH}",
    )


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def _shown(value) -> str:
    if isinstance(value, dict) and "name" in value:
        args = ", ".join(
            f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
            for k, v in value.items()
            if k != "name"
        )
        return f"{value['name']}({args})"
    return str(value)
