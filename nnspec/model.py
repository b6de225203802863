"""The public front door: `load`, `loads`, `load_all`, and `Model`, a checked network with its
train section; `load_folder` for a folder of specs; and what the drawing is handed (`drawables`,
`zoo_files`), so that it never reads a spec or a train section itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import arguments
from .check import DEFAULT_MAX_PARAMS, check
from .collector import collector_paused
from .errors import Collector, FileError, Source, Span, SpecError, did_you_mean
from .program import Program
from .resolve import Library, build_graph, check_blocks, load_library, read_source
from .shipped import shipped_folder
from .train_section import TrainSpec, check_gan_pair, check_training, read_train

if TYPE_CHECKING:
    from .draw import Drawable, ZooFile


@dataclass(frozen=True)
class Model:
    """A checked network: its `program` (layers, shapes, parameters) and its train section, if
    any."""

    program: Program
    train_spec: TrainSpec | None
    path: str

    @property
    def name(self) -> str:
        return self.program.name

    @property
    def description(self) -> str | None:
        return self.program.description

    def summary(self, width: int = 100) -> str:
        """The layer table: layer, kind, output shape, parameters, inputs; then the totals."""
        from .summary import render_summary

        arguments.whole("width", width, 1, "leave it out for 100 columns")
        return render_summary(self.program, width=width)

    def draw(
        self,
        path: str | os.PathLike,
        *,
        palette: str = "asimov",
        annotate: bool = False,
        orient: str = "lr",
    ) -> Path:
        """Draw this network as a Neural Network Zoo diagram; the extension of `path` picks .svg,
        .png or .pdf.

        Options: palette='asimov'|'colorblind', annotate=False, orient='lr'|'tb' (see
        docs/drawing.md). Returns the path written; raises `nnspec.draw.DrawError` for a format,
        option or place it cannot write.
        """
        from .draw import draw

        arguments.path("path", path, f"{self.name}.svg")
        arguments.flag("annotate", annotate)
        return draw(drawables([self]), path, palette=palette, annotate=annotate, orient=orient)

    def to_torch(self, seed: int | None = 0, dtype: str = "float32", device: str | None = None):
        """A `torch.nn.Module` computing this network; parameters drawn from `seed` (see
        docs/backends.md), on `device` (cpu, cuda, cuda:N or mps; None: the CPU, as torch makes
        modules; R334 for a device that is not there)."""
        from .backends.torch import to_torch

        dtype = _check_lowering(seed, dtype)
        net = to_torch(self.program, seed=seed, dtype=dtype)
        if device is None:
            return net
        from .backends.devices import torch_device

        return net.to(torch_device(device))

    def to_numpy(self, seed: int | None = 0, dtype: str = "float32"):
        """A NumPy program computing this network, with `.params` and its own gradients (no
        torch needed)."""
        from .backends.numpy import to_numpy

        dtype = _check_lowering(seed, dtype)
        return to_numpy(self.program, seed=seed, dtype=dtype)

    def compile(
        self,
        target: str,
        path: str | os.PathLike | None = None,
        weights: str | os.PathLike | dict | None = None,
    ) -> list[Path]:
        """This network as a standalone file (docs/compile.md): `target` "torch" or "numpy" (a
        .py file, its parameters beside it as NAME.safetensors) or "onnx" (one .onnx file).
        `path` defaults to the network's name in the current folder. The parameters are the
        seeded initial ones, or `weights`: a trained run's weights.safetensors (checked against
        this network, E506; a run trained with `normalize = true` gives a file that standardises
        its inputs as the run did) or arrays by the spec's names. Returns the files written."""
        from .backends.weights import fit_weights, read_weights
        from .compile import TARGETS, compile_model
        from .compile.standardised import check_statistics
        from .data.standardise import recorded_statistics

        arguments.one_of("target", target, tuple(TARGETS))
        if path is not None:
            arguments.path("path", path, f"{self.name}{TARGETS.get(target, '.py')}")
        stats = {}
        if isinstance(weights, dict):
            weights = fit_weights(weights, self.program, "the weights dict", "the dict")
        elif weights is not None:
            arguments.path("weights", weights, f"runs/{self.name}/weights.safetensors")
            stats = recorded_statistics(weights)  # a normalize = true run's: the file applies them
            check_statistics(self, stats, str(weights))
            weights = read_weights(weights, self.program)
        return compile_model(self, target, path, weights, stats)

    def __repr__(self) -> str:
        size = f"{len(self.program.layers)} layers, {self.program.param_count:,} parameters"
        return f"<nnspec.Model {self.name}: {size}>"

    # In a notebook (draw/notebook.py, imported only when a notebook asks): the diagram and the
    # layer table. IPython asks for the bundle; the other two serve those who ask for one alone.
    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        from .draw.notebook import notebook_bundle

        return notebook_bundle(drawables([self]))

    def _repr_svg_(self) -> str | None:
        """The diagram as SVG text (None for a network nnspec cannot draw)."""
        return self._repr_mimebundle_().get("image/svg+xml")

    def _repr_html_(self) -> str:
        """The diagram above the layer table, as HTML."""
        return self._repr_mimebundle_()["text/html"]


def load(
    path: str | os.PathLike, network: str | None = None, *, max_params: int = DEFAULT_MAX_PARAMS
) -> Model:
    """Parse and check the spec at `path`; raise `SpecError` with every mistake found.

    `network` picks one network in a file that holds several.
    """
    _check_loading(path, max_params)
    return _model(read_source(path), network, max_params)


def loads(
    text: str,
    network: str | None = None,
    *,
    path: str = "<string>",
    max_params: int = DEFAULT_MAX_PARAMS,
) -> Model:
    """`load` from a string; `use` paths are relative to the current directory."""
    if not isinstance(text, str):
        arguments.refuse(
            f"loads takes the spec's text as a str, not {type(text).__name__}",
            "decode bytes first (data.decode('utf-8')), or give a file's name to nnspec.load",
        )
    _check_loading(path, max_params)
    return _model(Source(path, text.removeprefix("\ufeff")), network, max_params)


def load_all(path: str | os.PathLike, *, max_params: int = DEFAULT_MAX_PARAMS) -> list[Model]:
    """Every network of the spec at `path`, in file order, each checked with its train section;
    raise `SpecError` with every mistake found. A file of blocks only gives []."""
    _check_loading(path, max_params)
    return check_source(read_source(path), max_params)


def _check_loading(path, max_params) -> None:
    """R339 for a path that is none, or a max_params that is no whole number of 1 or more."""
    arguments.path("path", path, "xor.nn")
    arguments.whole("max_params", max_params, 1, "leave it out for the limit of a billion")


def _check_lowering(seed, dtype) -> str:
    """The dtype's name ("float32", np.float64 and np.dtype("float64") will do); R339 for a seed
    that is neither None nor a whole number of 0 or more, or a dtype the backends do not compute
    in."""
    arguments.whole("seed", seed, 0)
    try:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        name = dtype
    arguments.one_of("dtype", name, ("float32", "float64"))
    return name


@collector_paused(age=True)  # the syntax tree is freed first; the models live on (collector.py)
def check_source(source: Source, max_params: int = DEFAULT_MAX_PARAMS) -> list[Model]:
    """Check every network and train section of one file; raise one `SpecError` holding every
    mistake."""
    library = load_library(source)
    errors = Collector()
    networks = list(library.root.networks)
    if not networks and not library.root.blocks:
        errors.add(
            "E315",
            "the file defines no network",
            _start_of(source),
            "a spec declares 'network NAME { ... }'",
        )
    try:
        check_blocks(library)  # the blocks no network uses; the others are checked placed
    except SpecError as error:
        errors.extend(error)
    models = []
    trains = _trains(library, errors)
    for network in networks:
        try:
            program = check(build_graph(library, network), max_params)
        except SpecError as error:
            errors.extend(error)
            continue
        train = trains.get(network.name.text)
        if train is not None:
            check_training(program, train, errors)
        models.append(Model(program, train, source.path))
    programs = {model.name: model.program for model in models}
    for train in {id(t): t for t in trains.values()}.values():  # a GAN's is under both names
        check_gan_pair(programs, train, errors)
    errors.raise_if_any()
    return models


@collector_paused(age=True)
def _model(source: Source, network: str | None, max_params: int) -> Model:
    library = load_library(source)
    check_blocks(library)  # a mistake in a block no network uses is still a mistake in the file
    chosen = _choose(library, network, source)
    errors = Collector()
    trains = _trains(library, errors)
    train = trains.get(chosen.name.text)
    try:
        program = check(build_graph(library, chosen), max_params)
        if train is not None:
            check_training(program, train, errors)
            check_gan_pair(_with_partner(library, program, train, max_params), train, errors)
    except SpecError as error:
        errors.extend(error)
    errors.raise_if_any()
    return Model(program, train, source.path)


def _with_partner(library: Library, program: Program, train: TrainSpec, max_params: int) -> dict:
    """`program`, and the other network of its GAN pair when its train section names one."""
    programs = {program.name: program}
    for role in ("generator", "discriminator"):
        name = train.settings.get(role)
        if isinstance(name, str) and name != program.name and name in library.networks:
            programs[name] = check(build_graph(library, library.networks[name]), max_params)
    return programs


def _choose(library: Library, network: str | None, source: Source):
    own = {n.name.text: n for n in library.root.networks}
    if network is not None:
        if network in own or network in library.networks:
            return own.get(network) or library.networks[network]
        raise SpecError(
            "E316",
            f"no network '{network}' in {source.path}",
            None,
            did_you_mean(network, own, "networks"),
        )
    if len(own) == 1:
        return next(iter(own.values()))
    if not own:
        raise SpecError(
            "E315",
            "the file defines no network",
            _start_of(source),
            "a spec declares 'network NAME { ... }'",
        )
    raise SpecError(
        "E316",
        f"{source.path} defines several networks: {', '.join(own)}",
        None,
        "choose one with --network NAME (in Python: nnspec.load(path, network=NAME))",
    )


def _start_of(source: Source) -> Span:
    return Span(source, 1, 1, 1, 2)


def _trains(library: Library, errors: Collector) -> dict[str, TrainSpec]:
    """Each network's train section (a GAN section is kept under both of its networks)."""
    names = [n.name.text for n in library.root.networks]
    trains = {}
    for train in library.root.trains:
        spec = read_train(train, names + [n for n in library.networks if n not in names], errors)
        if spec is None:
            continue
        targets = (
            [spec.network]
            if spec.network
            else [
                str(spec.settings[k]) for k in ("generator", "discriminator") if k in spec.settings
            ]
        )
        if not targets and len(names) == 1:
            targets = names
        for target in targets:
            if target in trains:
                errors.add(
                    "E504",
                    f"network '{target}' has two train sections",
                    train.span,
                    "keep one train section per network",
                )
            trains[target] = spec
    return trains


# ---- folders of specs, and what the drawing is handed ----------------------------------------
@dataclass(frozen=True)
class SpecFile:
    """One `.nn` file of a folder, read and checked: its text, and its models or the error that
    stopped it (a file of blocks only has neither)."""

    path: Path
    text: str
    models: tuple[Model, ...] = ()
    error: SpecError | None = None


def load_folder(
    directory: str | os.PathLike, max_params: int = DEFAULT_MAX_PARAMS
) -> list[SpecFile]:
    """Every `*.nn` file directly in `directory` (not its sub-folders), in name order, each
    checked on its own. A folder that is not there is a `FileError` (R101)."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise FileError(
            "R101",
            f"cannot read {folder}: it is a file, not a folder",
            f"nnspec zoo draws every spec of a folder: name the folder that holds it, or draw "
            f"this one with nnspec draw {folder}",
        )
    if not folder.is_dir():
        raise FileError(
            "R101", f"cannot read {folder}: no such folder", "name a folder of .nn specs"
        )
    files = []
    for path in sorted(folder.glob("*.nn")):
        text = ""
        try:
            source = read_source(path)
            text = source.text
            files.append(SpecFile(path, text, tuple(check_source(source, max_params))))
        except SpecError as error:
            files.append(SpecFile(path, text, error=error))
    return files


def bundled_specs() -> Path:
    """The specs shipped with nnspec: inside the installed package, or beside it in a checkout."""
    return shipped_folder("specs")


def zoo_files(
    directory: str | os.PathLike | None = None, max_params: int = DEFAULT_MAX_PARAMS
) -> list[ZooFile]:
    """What `nnspec zoo` draws: every spec in `directory` (default: the bundled specs) with its
    networks. Every file is checked before anything is drawn: one `SpecError` holds every
    mistake of every file; a folder with no network is a `FileError` (R102)."""
    from .draw import ZooFile

    folder = Path(directory) if directory is not None else bundled_specs()
    files = load_folder(folder, max_params)
    failures = [each for file in files if file.error for each in file.error.errors]
    if failures:
        raise SpecError.group(failures)
    if not any(file.models for file in files):
        raise FileError(
            "R102",
            f"cannot make a zoo of {folder}: it holds no .nn spec with a network",
            "name a folder of .nn files that declare 'network NAME { ... }'",
        )
    return [ZooFile(f.path, f.text, tuple(drawables(f.models))) for f in files if f.models]


def drawables(models: list[Model] | tuple[Model, ...]) -> list[Drawable]:
    """Each model as the drawing needs it: its program, name and description, the GAN its train
    section pairs it in, and whether its outputs are trained to reproduce its input."""
    from .draw import Drawable

    return [
        Drawable(model.program, model.name, model.description, _gan(model), _reproduces(model))
        for model in models
    ]


def _gan(model: Model) -> tuple[str, str] | None:
    settings = model.train_spec.settings if model.train_spec else {}
    generator, discriminator = settings.get("generator"), settings.get("discriminator")
    return None if generator is None or discriminator is None else (generator, discriminator)


def _reproduces(model: Model) -> bool:
    """An autoencoder's outputs (`target = input`) and a GAN generator's reproduce the data."""
    settings = model.train_spec.settings if model.train_spec else {}
    return settings.get("target") == "input" or settings.get("generator") == model.name
