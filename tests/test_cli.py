"""The command line as a user runs it: exit codes, stdout for data, stderr for diagnostics."""

import subprocess
import sys

import pytest
from conftest import EXAMPLES, TEST_SPECS


def nnspec(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_check_clean_files_prints_nothing_and_exits_0():
    result = nnspec("check", *sorted(EXAMPLES.glob("*.nn")))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_reports_errors_on_stderr_with_exit_1():
    result = nnspec("check", EXAMPLES / "xor.nn", EXAMPLES / "errors" / "typo_kind.nn")
    assert result.returncode == 1 and result.stdout == ""
    assert "typo_kind.nn:4:5: error[E201]: unknown layer kind 'dence'" in result.stderr
    assert "  hint: did you mean 'dense'?" in result.stderr
    assert "1 of 2 files have errors" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_a_clean_error():
    result = nnspec("check", "no/such/file.nn")
    assert result.returncode == 1
    assert "error[E308]: spec file 'no/such/file.nn' is not found" in result.stderr
    assert "hint: the path is relative to the current folder: nnspec looked for" in result.stderr


@pytest.mark.slow
def test_usage_errors_exit_2_and_help_exits_0():
    assert nnspec().returncode == 2
    assert nnspec("check").returncode == 2
    assert nnspec("frobnicate").returncode == 2
    assert nnspec("summary", EXAMPLES / "xor.nn", "--max-params", "lots").returncode == 2
    for command in ([], ["check"], ["summary"]):
        result = nnspec(*command, "--help")
        assert result.returncode == 0 and "usage: nnspec" in result.stdout


@pytest.mark.parametrize(
    "argv, said",
    [
        (["trian", "xor.nn"], "unknown command 'trian'; did you mean 'train'?"),
        (["xyzzy"], "unknown command 'xyzzy'; known commands: check, compile, draw, fmt, lsp"),
        (["xor.nn"], "'xor.nn' is a file, not a command: try 'nnspec check xor.nn'"),
        (["specs"], "'specs' is a folder, not a command: try 'nnspec zoo specs'"),
    ],
)
def test_an_unknown_command_names_the_closest_one(argv, said, capsys, tmp_path, monkeypatch):
    from nnspec.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    assert main(argv) == 2
    assert f"nnspec: error: {said}" in capsys.readouterr().err


def test_help_as_a_command_is_the_help_of_nnspec_or_of_a_command(capsys):
    from nnspec.cli import main

    assert main(["help"]) == 0
    assert capsys.readouterr().out.startswith("usage: nnspec [-h]")
    assert main(["help", "train"]) == 0
    assert capsys.readouterr().out.startswith("usage: nnspec train")


def test_version():
    result = nnspec("--version")
    assert result.returncode == 0 and result.stdout.startswith("nnspec ")


def test_summary_prints_the_table_to_stdout():
    result = nnspec("summary", EXAMPLES / "residual.nn")
    assert result.returncode == 0 and result.stderr == ""
    assert "r.6.b" in result.stdout and "Total params: 54,730" in result.stdout


@pytest.mark.slow
def test_summary_of_one_network_of_several():
    result = nnspec("summary", TEST_SPECS / "ok" / "every_kind.nn", "--network", "graph")
    assert result.returncode == 0 and "g1" in result.stdout and "vectors" not in result.stdout
    missing = nnspec("summary", TEST_SPECS / "ok" / "every_kind.nn", "--network", "grahp")
    assert missing.returncode == 1 and "did you mean 'graph'?" in missing.stderr


def test_max_params_option():
    result = nnspec("summary", EXAMPLES / "lenet.nn", "--max-params", "1000")
    assert (
        result.returncode == 1
        and "error[E406]" in result.stderr
        and "--max-params" in result.stderr
    )


@pytest.mark.slow
def test_dump_prints_each_stage():
    syntax = nnspec("check", "--dump", "syntax", EXAMPLES / "vae.nn")
    assert syntax.returncode == 0 and "link mu -> z.mean  @11:8" in syntax.stdout
    graph = nnspec("check", "--dump", "graph", EXAMPLES / "elman.nn")
    assert "link h ~> h  @8:7" in graph.stdout
    program = nnspec("check", "--dump", "program", EXAMPLES / "elman.nn")
    assert "h: dense -> [T, 16] recurrent  {weight [16, 17], bias [16]}" in program.stdout


@pytest.mark.slow
def test_check_and_summary_never_import_torch():
    code = (
        "import sys\n"
        "from nnspec.cli import main\n"
        f"assert main(['check', {str(EXAMPLES / 'lenet.nn')!r}]) == 0\n"
        f"assert main(['summary', {str(EXAMPLES / 'residual.nn')!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_the_console_script_is_installed():
    import shutil

    script = shutil.which("nnspec") or str(
        __import__("pathlib").Path(sys.executable).parent / "nnspec"
    )
    result = subprocess.run(
        [script, "check", EXAMPLES / "xor.nn"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0


@pytest.mark.parametrize("value", ["inf", "1e400", "nan"])
def test_an_infinite_whole_number_is_a_usage_error(value, tmp_path, capsys):
    from nnspec.cli import main

    xor = str(EXAMPLES / "xor.nn")
    assert main(["check", "--max-params", value, xor]) == 2
    assert f"--max-params: must be a whole number >= 1: {value}" in capsys.readouterr().err
    out = str(tmp_path / "run")
    assert main(["train", xor, "--backend", "numpy", "--out", out, "--batch", value]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_help_lists_every_exit_code():
    result = nnspec("--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    for listed in ("0 success", "1 an error in a spec", "2 a usage error", "3 an internal error"):
        assert listed in text, listed
    assert "130 interrupted" in text


def test_an_internal_error_exits_3_and_says_it_is_a_bug(monkeypatch, capsys):
    import nnspec.model
    from nnspec.cli import main

    def broken(*args, **kwargs):
        raise RuntimeError("a stage broke")

    monkeypatch.setattr(nnspec.model, "check_source", broken)
    assert main(["check", str(EXAMPLES / "xor.nn")]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert captured.err.count("Traceback") == 1  # the one traceback, to report; nothing chained
    assert lines[-2] == "RuntimeError: a stage broke"
    assert "this is a bug in nnspec, not in your spec" in lines[-1]
    assert "Please report it" in lines[-1]


def test_every_user_error_is_an_nnspec_error_with_a_code_and_exits_1(tmp_path, capsys):
    """A drawing, a file and training stopped: each renders `error[CODE]: message` and a hint."""
    import nnspec
    from nnspec.cli import main
    from nnspec.draw import DrawError
    from nnspec.training import TrainingStopped

    assert issubclass(nnspec.SpecError, nnspec.NnspecError)
    assert issubclass(DrawError, nnspec.NnspecError) and issubclass(DrawError, ValueError)
    assert issubclass(TrainingStopped, nnspec.NnspecError)
    untrained = tmp_path / "untrained.nn"
    untrained.write_text("network n {\n input x: 2\n dense y: 1\n x -> y\n}\n")
    (tmp_path / "file").write_text("a file where a folder is wanted")
    cases = [
        (["draw", str(EXAMPLES / "xor.nn"), "-o", str(tmp_path / "xor.gif")], "R201"),
        (["zoo", str(tmp_path / "nowhere")], "R101"),
        (["train", str(untrained)], "R303"),
        (["draw", str(EXAMPLES / "xor.nn"), "-o", str(tmp_path / "file" / "xor.svg")], "R101"),
    ]
    for args, code in cases:
        assert main(args) == 1, args
        err = capsys.readouterr().err
        assert err.startswith(f"error[{code}]: "), err
        assert "\n  hint: " in err and "Traceback" not in err, err


def test_every_run_time_code_is_documented():
    import re

    from conftest import ROOT

    raised = set()
    for path in (ROOT / "nnspec").rglob("*.py"):
        raised |= set(re.findall(r"[\"'](R\d{3})[\"']", path.read_text()))
    documented = set(
        re.findall(r"^### (R\d{3}): \S", (ROOT / "docs" / "errors.md").read_text(), re.MULTILINE)
    )
    assert len(raised) >= 8
    assert sorted(raised - documented) == [], "add a section to docs/errors.md for these codes"
    assert sorted(documented - raised) == [], "docs/errors.md documents codes nnspec never raises"
