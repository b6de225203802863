"""Shared test helpers: where the spec folders are; the backends to train on; each spec file's
networks, checked once per test process; runs that several tests read, made once per test run.

Under pytest-xdist (`make test` runs `pytest -n 2`) every worker is one process of its own: it
collects every module itself, and each worker's torch and BLAS get one thread (a core each),
unless OMP_NUM_THREADS says otherwise. A run shared by `once` is made by the first worker that
asks for it; the others wait for it and read it.
"""

import fcntl
import functools
import hashlib
import importlib.util
import os
import pickle
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: torch's and OpenBLAS's default of a thread per core would put four
    # busy threads on two cores, and their spinning threads make training several times slower.
    # Set before any test module imports numpy or torch; inherited by the `nnspec` subprocesses.
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SPECS = ROOT / "specs"
TEST_SPECS = Path(__file__).resolve().parent / "specs"

HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = [
    pytest.param(
        "torch", marks=pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
    ),
    "numpy",
]


def pytest_collection_modifyitems(config, items):
    """Under xdist, the tests marked slow go first (in their order), the quick ones after them.

    Workers take tests in collection order and the idle one takes half of the other's queue, so
    slow tests at the end would leave one worker finishing a long test alone; quick ones at the
    end even out. A run without xdist keeps the file order.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def ctrl_c_reaches_it() -> None:
    """`preexec_fn` of a run a test stops with SIGINT: Ctrl-C's default action, whatever this
    process inherited (a shell starts a background job, `make test &`, with SIGINT ignored, and
    an exec keeps an ignored signal ignored, so the run would never see the test's Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sampled(values: list, every: int = 6) -> list:
    """`values` as test parameters with all but every `every`-th marked slow: `make check`, the
    quick loop, tries a spread sample of a family that covers every bundled spec, `make test`
    every one. A tuple is one case of several arguments."""
    cases = [value if isinstance(value, tuple) else (value,) for value in values]
    slow = pytest.mark.slow
    return [
        pytest.param(*case, marks=() if index % every == 0 else slow)
        for index, case in enumerate(cases)
    ]


@functools.cache
def spec_models(path: Path) -> tuple:
    """`nnspec.load_all(path)`, checked once per test process (collection parametrises by it).

    The models are shared: read them, never change them (a test that changes one loads its own).
    """
    import nnspec

    return tuple(nnspec.load_all(path))


def compiles_to(model, target: str) -> bool:
    """Whether every kind of `model` has a lowering in the compile target `target` ("numpy" or
    "onnx"; the torch target compiles every kind): a kind the target cannot write is E601, which
    the targets' own tests check, so the every-network tests leave such networks out."""
    if target == "numpy":
        from nnspec.compile.numpy_kinds import CANNOT
    else:
        from nnspec.compile.onnx_kinds import CANNOT
    return not any(layer.kind.name in CANNOT for layer in model.program.layers)


def _shared_folder(tmp_path_factory) -> Path:
    """This test run's folder for shared runs: under xdist, above the workers' own folders."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"


_MADE: dict[str, object] = {}


def once(tmp_path_factory, name: str, make: Callable[[Path], object]):
    """`make(folder)`, called once per test run and `name`, whichever test of any worker asks first.

    The result is pickled beside `folder`, so a worker that asks later (it waits while another
    makes it) reads it back. A `make` that raises leaves nothing: the next test to ask tries again,
    and fails with its own error. Only for results and files that the tests read and never change.
    """
    if name in _MADE:
        return _MADE[name]
    shared = _shared_folder(tmp_path_factory)
    shared.mkdir(parents=True, exist_ok=True)
    folder, done = shared / name, shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if done.exists():
            value = pickle.loads(done.read_bytes())
        else:
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            value = make(folder)
            done.write_bytes(pickle.dumps(value))
    _MADE[name] = value
    return value


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """`trained(spec, backend, **options)`: `nnspec.train(spec, backend, out, **options)`'s result,
    trained once per test run for each spec file, backend and options (epochs, seed, batch, ...).

    For tests that only read a run (its metrics, history, expectations and files). A test that
    resumes a run, writes into its folder or compares two runs of its own trains them itself.
    """

    def run(spec: Path, backend: str, **options):
        import nnspec

        spec = Path(spec).resolve()
        key = repr((str(spec), backend, sorted(options.items())))
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return once(
            tmp_path_factory,
            f"train-{spec.stem}-{backend}-{digest}",
            lambda out: nnspec.train(spec, backend, out, **options),
        )

    return run


def spec_inputs(
    program, batch: int = 3, steps: int = 4, seed: int = 0, edge_threshold: float = 0.5
) -> dict:
    """NumPy inputs for any network: token numbers for embeddings, 0/1 adjacency for graphs,
    normal values otherwise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = {}
    for name in program.inputs:
        layer = program.layer(name)
        shape = (
            (batch,)
            + ((layer.shape.steps or steps,) if layer.shape.timed else ())
            + layer.shape.dims
        )
        readers = [r for r in program.layers if any(link.source == name for link in r.inputs)]
        embeddings = [r.options.vocabulary for r in readers if r.kind.name == "embedding"]
        embeddings += [  # a markov chain with `index` reads state numbers alike
            r.options.states for r in readers if r.kind.name == "markov" and r.options.index
        ]
        if embeddings:
            data[name] = rng.integers(0, min(embeddings), shape).astype(float)
        elif any(
            link.source == name and link.port == "adjacency" for r in readers for link in r.inputs
        ):
            data[name] = (rng.random(shape) > edge_threshold).astype(float)
        else:
            data[name] = rng.standard_normal(shape)
    return data


def import_file(path: Path, name: str | None = None):
    """The Python file at `path` imported as a module of its own (a compiled network's file)."""
    spec = importlib.util.spec_from_file_location(name or f"compiled_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_with_cache(cache_home: Path, code: str, *args: str, timeout: float = 120) -> str:
    """The stdout of `code` run in a fresh interpreter whose grammar cache is under
    `cache_home` (XDG_CACHE_HOME), which must end cleanly (exit 0, nothing on stderr)."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


def assert_numpy_file_computes_as_the_backend(texts, tmp_path: Path) -> None:
    """Each spec text of `texts` compiled to a NumPy file (forward only), with weights drawn by
    the backend, gives the backend's outputs on a random sequence: float32, to 1e-6."""
    import numpy as np
    from safetensors.numpy import save_file

    import nnspec
    from nnspec.compile import emit

    rng = np.random.default_rng(0)
    for k, text in enumerate(texts):
        model = nnspec.loads(text)
        run = model.to_numpy(seed=k)
        path, weights = tmp_path / f"net{k}.py", tmp_path / f"net{k}.safetensors"
        path.write_bytes(emit(model, "numpy"))
        save_file({name: np.ascontiguousarray(v) for name, v in run.params.items()}, weights)
        x = rng.normal(size=(3, 7, model.program.layer("x").shape.dims[0])).astype(np.float32)
        got = import_file(path).load(weights)(x)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, run.eval()(x), rtol=1e-6, atol=1e-6)


def _trained_float64(model, backend: str, out: Path, models=None):
    """`model` (or a GAN's `models`) trained by its train section on `backend` in float64:
    the final weights and the rows of metrics.csv."""
    from nnspec.data import load_data
    from nnspec.train_section import train_config
    from nnspec.training import make_gan, make_runner
    from nnspec.training.loop import fit

    data = load_data(model.train_spec, (models or [model])[-1].program)
    config = train_config(model.train_spec, data.kind)
    runner = (
        make_runner(model, config, backend, "float64")
        if models is None
        else make_gan(*models, config, backend, "float64")
    )
    outcome = fit(runner, data, config, out, resume=False)
    return runner.weights(), outcome.history


def assert_trains_alike(model, folder: Path, models=None) -> tuple[list, list]:
    """The same run on NumPy and on PyTorch in float64 ends with the same weights and metrics
    (1e-9); gives both histories (NumPy's first) for what a test checks besides."""
    import numpy as np

    (ours, ours_history), (theirs, theirs_history) = (
        _trained_float64(model, b, folder / b, models) for b in ("numpy", "torch")
    )
    assert set(ours) == set(theirs)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-9, atol=1e-12, err_msg=name)
    for a, b in zip(ours_history, theirs_history, strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-9, atol=1e-12)
    return ours_history, theirs_history


def assert_compiled_torch_equals_to_torch(tmp_path: Path, model, params: dict, x: dict) -> None:
    """`nnspec compile --to torch` of `model` with `params`, imported from `tmp_path` with its
    weights file beside it, gives exactly what `model.to_torch()` gives on the inputs `x`."""
    import torch

    from nnspec.compile import emit
    from nnspec.compile.common import weights_file

    (tmp_path / "net.py").write_bytes(emit(model, "torch", params))
    (tmp_path / "net.safetensors").write_bytes(weights_file(params))
    net = import_file(tmp_path / "net.py").load()
    reference = model.to_torch().eval()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    feeds = {k: torch.from_numpy(v) for k, v in x.items()}
    with torch.no_grad():
        assert torch.equal(net(**feeds), reference(**feeds))
