"""nnspec in Jupyter (draw/notebook.py, training/notebook.py): a Model's diagram and layer
table, a TrainResult's table and plot, the progress bar under a cell, and examples/tour.ipynb
executed headless in a kernel of this venv's Python (nbclient and ipykernel: the `notebook`
extra)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import nnspec
from nnspec.draw import notebook as views
from nnspec.summary import summary_rows, totals_lines
from nnspec.training import TrainResult, notebook
from nnspec.training.loop import Expectation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TOUR = EXAMPLES / "tour.ipynb"


# ---- Model ----------------------------------------------------------------------------------
def test_a_model_shows_its_diagram_and_its_layer_table(tmp_path):
    model = nnspec.load(EXAMPLES / "lenet.nn")
    bundle = model._repr_mimebundle_()
    svg = bundle["image/svg+xml"]
    # the diagram is the one `draw` writes, byte for byte
    assert svg.encode() == model.draw(tmp_path / "lenet.svg").read_bytes()
    assert model._repr_svg_() == svg
    page = model._repr_html_()
    assert page == bundle["text/html"]
    image = re.search(r'<img alt="network diagram" src="data:image/svg\+xml;base64,([^"]+)">', page)
    assert image is not None and base64.b64decode(image.group(1)).decode() == svg
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    rows = summary_rows(model.program)
    assert len(rows) == 8 and cells == [cell for row in rows for cell in row]
    assert cells[15:20] == ["c2", "conv 16, padding=same, act=relu", "[16, 4, 4]", "1,168", "p1"]
    assert all(line in page for line in totals_lines(model.program))
    assert "Total params: 3,658" in page


def test_a_model_nnspec_cannot_draw_shows_its_table_and_why(monkeypatch):
    from nnspec.draw import DrawError

    def cannot(*args):
        raise DrawError("R201", "cannot draw <this>", "a hint")

    monkeypatch.setattr(views, "render", cannot)
    model = nnspec.load(EXAMPLES / "xor.nn")
    assert model._repr_svg_() is None
    page = model._repr_html_()
    assert page.startswith("<p><em>no diagram: cannot draw &lt;this&gt; [R201]</em></p><table>")
    assert ">dense 2, act=tanh<" in page and "<img" not in page


def test_the_summary_text_is_the_same_in_a_notebook():
    """rich would show a table in a Jupyter kernel rather than write it: the summary is text."""
    text = nnspec.load(EXAMPLES / "xor.nn").summary()
    assert "Total params: 9" in text and "dense 2, act=tanh" in text


# ---- TrainResult ----------------------------------------------------------------------------
def _result(history) -> TrainResult:
    return TrainResult(
        "xor",
        "numpy",
        {"loss": 0.0125, "accuracy": 1.0},
        [
            Expectation("accuracy", ">=", 1.0, 1.0),
            Expectation("loss", "<=", 0.01, 0.0125),
            Expectation("r2", ">=", 0.5, float("nan")),
        ],
        {"weights": Path("runs/xor/weights.safetensors")},
        history,
    )


def test_a_result_shows_the_table_nnspec_train_prints():
    page = _result([])._repr_html_()
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    cells = [re.findall(r"<t[dh]>([^<]*)</t[dh]>", row) for row in rows]
    assert cells == [
        ["metric", "reached", "expected", ""],
        ["loss", "0.0125", "&lt;= 0.01", "MISSED"],
        ["accuracy", "1", "&gt;= 1", "ok"],
        ["r2", "not measured", "&gt;= 0.5", "MISSED"],
    ]
    assert "<b>xor (numpy)</b>" in page and "weights: runs/xor/weights.safetensors" in page


def test_a_result_plots_its_loss_and_metrics_per_epoch():
    history = [
        {"epoch": e, "lr": 0.1, "loss": 1 / e, "accuracy": e / 4, "train_loss": 2 / e}
        for e in range(1, 5)
    ]
    figure = _result(history).plot()
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure)
    losses, metrics = figure.axes
    assert [line.get_label() for line in losses.get_lines()] == ["loss", "train_loss"]
    assert list(metrics.get_lines()[0].get_ydata()) == [0.25, 0.5, 0.75, 1.0]
    png = figure._repr_png_()  # a notebook shows it without pyplot's inline backend
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_a_result_with_no_epoch_has_nothing_to_plot():
    with pytest.raises(nnspec.NnspecError) as caught:
        _result([]).plot()
    assert caught.value.code == "R341"
    assert caught.value.message == "the run of 'xor' recorded no epoch: there is nothing to plot"
    assert caught.value.hint == "train for at least one epoch, then plot the result"


# ---- progress -------------------------------------------------------------------------------
def test_progress_is_a_function_or_shown_only_in_a_notebook():
    seen = []
    with notebook.progress_for(lambda *a: seen.append(a), "training xor", 5) as (report, notify):
        report(1, {})
        assert notify is None and seen == [(1, {})]
    assert not notebook.in_notebook()  # pytest is no kernel: nothing shown by default
    for quiet in (None, False):
        with notebook.progress_for(quiet, "training xor", 5) as shown:
            assert shown == (None, None)
    with (
        pytest.raises(TypeError, match="progress is a function"),
        notebook.progress_for("bar", "training xor", 5),
    ):
        pass


def test_a_jupyter_kernel_is_told_from_a_terminal(monkeypatch):
    """A kernel's shell is ipykernel's ZMQ shell or a subclass of it (Colab's); IPython in a
    terminal is another shell, and a script has none."""

    class ZMQInteractiveShell:
        pass

    class ColabShell(ZMQInteractiveShell):
        pass

    shells = [ZMQInteractiveShell(), ColabShell(), object(), None]
    ipython = types.SimpleNamespace(get_ipython=lambda: shells[0])
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(
        sys.modules,
        "ipykernel.zmqshell",
        types.SimpleNamespace(ZMQInteractiveShell=ZMQInteractiveShell),
    )
    seen = []
    while shells:
        seen.append(notebook.in_notebook())
        shells.pop(0)
    assert seen == [True, True, False, False]


def test_progress_true_outside_a_notebook_is_the_terminal_bar(capsys):
    with notebook.progress_for(True, "training xor", 3) as (report, notify):
        assert isinstance(report, notebook.TerminalBar)
        for epoch in (1, 2, 3):
            report(epoch, {"epoch": epoch, "lr": 0.5, "loss": 0.5 / epoch})
    captured = capsys.readouterr()
    assert captured.out == "" and "training xor" in captured.err
    assert "3/3 loss 0.1667" in " ".join(captured.err.split())


def test_train_reports_every_epoch_to_progress(tmp_path):
    seen = []
    result = nnspec.train(
        EXAMPLES / "xor.nn",
        backend="numpy",
        out=tmp_path / "xor",
        epochs=6,
        progress=lambda epoch, row: seen.append((epoch, sorted(row))),
    )
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4, 5, 6] and len(result.history) == 6
    assert seen[-1][1] == ["accuracy", "epoch", "loss", "lr", "train_accuracy", "train_loss"]


class _Handle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, bundle, raw):
        assert raw
        self.shown.append(bundle)


def test_the_notebook_bar_updates_in_place_at_most_every_tenth_of_a_second(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown = []

    def fake_display(bundle, raw, display_id):
        assert raw and display_id
        shown.append(bundle)
        return _Handle(shown)

    monkeypatch.setattr(display, "display", fake_display)
    clock = iter([0.0, 0.0, 0.05, 0.2, 0.21, 0.22, 0.3, 0.3])
    monkeypatch.setattr(notebook.time, "monotonic", lambda: next(clock))
    bar = notebook.NotebookBar("training xor", 3)
    bar(1, {"epoch": 1, "lr": 0.5, "loss": 0.25})  # 0.05 s after the last: not sent
    bar(2, {"epoch": 2, "lr": 0.5, "loss": 0.125})  # 0.2 s: sent
    bar(3, {"epoch": 3, "lr": 0.5, "loss": 0.0625})  # the last epoch: always sent
    bar.close()
    assert len(shown) == 4
    assert "0/3" in shown[0]["text/plain"] and "2/3  loss 0.125" in shown[1]["text/plain"]
    last = shown[-1]
    assert last["text/plain"].startswith("training xor " + "━" * 30 + " 3/3  loss 0.0625")
    assert "<progress value='3' max='3'" in last["text/html"] and "3/3 epochs" in last["text/html"]


def test_the_notebook_bar_says_where_a_run_stopped(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(display, "display", lambda b, raw, display_id: _Handle(shown))
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    with (
        pytest.raises(KeyboardInterrupt),
        notebook.progress_for(None, "training xor", 10) as (report, notify),
    ):
        notify("resuming runs/xor from epoch 4 to 10", 10)
        report(5, {"epoch": 5, "loss": 0.5})
        raise KeyboardInterrupt
    assert shown[-1]["text/plain"].startswith("resuming runs/xor from epoch 4 to 10\n")
    assert "training xor (stopped after epoch 5)" in shown[-1]["text/plain"]


# ---- examples/tour.ipynb --------------------------------------------------------------------
def test_the_tour_is_stored_without_outputs():
    """Outputs are made by whoever runs it: the stored file stays small and never stale."""
    stored = json.loads(TOUR.read_text())
    assert stored["metadata"]["kernelspec"]["name"] == "python3"
    code = [cell for cell in stored["cells"] if cell["cell_type"] == "code"]
    assert len(code) >= 10
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    steps = "".join("".join(cell["source"]) for cell in code)
    for step in ("nnspec.load(", ".summary()", ".draw(", "nnspec.train(", ".plot()", ".compile("):
        assert step in steps


def _kernel(tmp_path):
    """A kernel of this venv's Python, from a kernelspec of this test's own: no user-level
    kernelspec or IPython profile is read, so the test runs the same from a clean clone."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = tmp_path / "kernels" / "nnspec-tour"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    env = {"IPYTHONDIR": str(tmp_path / "ipython"), "OMP_NUM_THREADS": "1"}
    kernel = {"argv": argv, "display_name": "nnspec", "language": "python", "env": env}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False)
    return AsyncKernelManager(kernel_name="nnspec-tour", kernel_spec_manager=specs)


def _outputs(cell, kind: str) -> list[str]:
    return [o["data"][kind] for o in cell.outputs if kind in o.get("data", {})]


def _text(cell) -> str:
    return "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs
    )


@pytest.mark.slow
def test_the_tour_runs_headless_and_shows_its_diagrams_and_metrics(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    pytest.importorskip("ipykernel", reason="the notebook extra is not installed")
    tour = nbformat.read(TOUR, as_version=4)
    tour.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    km = _kernel(tmp_path)
    client = nbclient.NotebookClient(
        tour, km=km, timeout=300, resources={"metadata": {"path": str(EXAMPLES)}}
    )
    # a cell that raises fails the test here (CellExecutionError); either way the kernel is shut
    # down and its channels closed (cleanup_kc: nbclient does it for the managers it makes)
    client.execute(cleanup_kc=True)
    code = [cell for cell in tour.cells if cell.cell_type == "code"]

    def cell(start: str):
        (found,) = [each for each in code if each.source.startswith(start)]
        return found

    assert _text(cell("import sys")).strip() == sys.executable  # this venv's Python

    shown = cell('model = nnspec.load("xor.nn")')
    (svg,) = _outputs(shown, "image/svg+xml")
    assert svg.startswith("<?xml") and "<svg" in svg
    (page,) = _outputs(shown, "text/html")
    assert 'src="data:image/svg+xml;base64,' in page and "Total params: 9" in page
    assert "<svg" in _outputs(cell("from IPython.display import SVG"), "image/svg+xml")[0]

    trained = cell('result = nnspec.train("xor.nn"')
    bar, table = trained.outputs
    assert "2000/2000" in bar["data"]["text/plain"] and "accuracy 1" in bar["data"]["text/plain"]
    assert "<td>accuracy</td><td>1</td><td>&gt;= 1</td><td>ok</td>" in table["data"]["text/html"]
    reached = _text(cell("result.metrics, result.passed"))
    assert "'accuracy': 1.0" in reached and reached.rstrip().endswith("True)")
    iris = cell('run = nnspec.train("iris_csv.nn"')
    for plotted in (cell("result.plot()"), iris):
        (png,) = _outputs(plotted, "image/png")
        assert base64.b64decode(png).startswith(b"\x89PNG")
    assert "&gt;= 0.9</td><td>ok</td>" in "".join(_outputs(iris, "text/html"))

    compiled = _text(cell('program = """'))
    predicted = [float(v) for v in compiled.strip().strip("[]").split()]
    assert [round(v) for v in predicted] == [0, 1, 1, 0]
    assert "['xor_net.py', 'xor_net.safetensors']" in _text(cell("files = model.compile("))
    (work,) = re.findall(r"PosixPath\('([^']+)'\)", _text(cell("import shutil")))
    assert "nnspec-tour-" in work and not Path(work).exists()  # the last cell removed it


@pytest.mark.slow
def test_check_summary_and_a_model_import_no_torch_onnx_or_matplotlib():
    code = (
        "import sys\n"
        "import nnspec\n"
        "from nnspec.cli import main\n"
        f"model = nnspec.load({str(EXAMPLES / 'xor.nn')!r})\n"
        "repr(model)\n"
        f"assert main(['check', {str(EXAMPLES / 'lenet.nn')!r}]) == 0\n"
        f"assert main(['summary', {str(EXAMPLES / 'residual.nn')!r}]) == 0\n"
        "heavy = ('torch', 'onnx', 'matplotlib', 'IPython', 'nnspec.notebook')\n"
        "loaded = [name for name in heavy if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
