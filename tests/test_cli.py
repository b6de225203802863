"""The command line as a user runs it: exit codes, stdout for data, stderr for diagnostics."""

import subprocess
import sys

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
    assert result.returncode == 1 and "error[E308]: no such file: no/such/file.nn" in result.stderr


def test_usage_errors_exit_2_and_help_exits_0():
    assert nnspec().returncode == 2
    assert nnspec("check").returncode == 2
    assert nnspec("frobnicate").returncode == 2
    assert nnspec("summary", EXAMPLES / "xor.nn", "--max-params", "lots").returncode == 2
    for command in ([], ["check"], ["summary"]):
        result = nnspec(*command, "--help")
        assert result.returncode == 0 and "usage: nnspec" in result.stdout


def test_version():
    result = nnspec("--version")
    assert result.returncode == 0 and result.stdout.startswith("nnspec ")


def test_summary_prints_the_table_to_stdout():
    result = nnspec("summary", EXAMPLES / "residual.nn")
    assert result.returncode == 0 and result.stderr == ""
    assert "r.6.b" in result.stdout and "Total params: 54,730" in result.stdout


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


def test_dump_prints_each_stage():
    syntax = nnspec("check", "--dump", "syntax", EXAMPLES / "vae.nn")
    assert syntax.returncode == 0 and "link mu -> z.mean  @11:8" in syntax.stdout
    graph = nnspec("check", "--dump", "graph", EXAMPLES / "elman.nn")
    assert "link h ~> h  @8:7" in graph.stdout
    program = nnspec("check", "--dump", "program", EXAMPLES / "elman.nn")
    assert "h: dense -> [T, 16] recurrent  {weight [16, 17], bias [16]}" in program.stdout


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


def test_the_console_script_is_installed():
    import shutil

    script = shutil.which("nnspec") or str(
        __import__("pathlib").Path(sys.executable).parent / "nnspec"
    )
    result = subprocess.run(
        [script, "check", EXAMPLES / "xor.nn"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
