"""The zoo: one command makes the poster and the web page of every bundled network; the page loads
in headless Chromium with no console errors and shows the diagrams.

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`), so the
test sees console messages, failed loads and page exceptions, and takes a screenshot. The
browser is Debian's `chromium`, which `.ci/run` installs; without it the browser tests skip,
unless NNSPEC_REQUIRE_BROWSER is set (as in CI), where they fail.
"""

import base64
import contextlib
import fcntl
import html
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SPECS, TEST_SPECS, once, spec_models

from nnspec.draw.page import entries
from nnspec.model import drawables

pytestmark = pytest.mark.slow  # `nnspec zoo` and the browser: processes that take seconds


def nnspec_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> Path:
    """`nnspec zoo` run as a new user would, with one finished training run beside it: once per
    test run (the tests only read what it made)."""

    def make(where: Path) -> tuple[subprocess.CompletedProcess, Path]:
        run = where / "runs" / "xor"
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text("epoch,loss,accuracy\n1,0.25,0.5\n2,0.0123456,1.0\n")
        return nnspec_cli("zoo", cwd=where), where

    result, where = once(tmp_path_factory, "zoo", make)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return where / "zoo"


BUNDLED = [
    (path, group)
    for path in sorted(SPECS.glob("*.nn"))
    for group in entries(drawables(spec_models(path)))
]


def test_one_command_makes_the_poster_and_a_diagram_per_network(zoo):
    for fmt in ("svg", "png", "pdf"):
        assert (zoo / f"zoo.{fmt}").stat().st_size > 10_000
    assert (zoo / "zoo.png").read_bytes().startswith(b"\x89PNG")
    assert len(BUNDLED) == len(
        list(SPECS.glob("*.nn"))
    )  # one entry per file: the GAN's two networks share one
    for path, _ in BUNDLED:
        assert (zoo / f"{path.stem}.svg").is_file(), path.stem
    assert not [p for p in zoo.iterdir() if p.name.endswith(".part")]


def test_the_poster_holds_every_network_once(zoo):
    import xml.etree.ElementTree as ET

    ids = [
        g.get("id")
        for g in ET.parse(zoo / "zoo.svg").getroot().iter("{http://www.w3.org/2000/svg}g")
    ]
    drawn = {tuple(i.split(":")[1:3]) for i in ids if i and i.startswith("cell:")}
    networks = {(path.stem, model.name) for path, group in BUNDLED for model in group}
    assert {(scope.split("/")[0], scope.split("/")[1]) for scope, _ in drawn} == networks


def test_the_page_shows_each_diagram_spec_size_and_result(zoo):
    page = (zoo / "index.html").read_text()
    for path, group in BUNDLED:
        assert f'<img src="{path.stem}.svg"' in page
        for model in group:
            assert f"{model.program.param_count:,}" in page, model.name
    text = html.unescape(re.sub(r"<[^>]+>", "", page))  # the spec, its highlighting aside
    assert 'network xor "XOR learned by a 2-2-1 network" {' in text
    assert '<span style="color: #008000; font-weight: bold">network</span>' in page  # coloured
    assert "epoch 2: loss 0.01235, accuracy 1" in page
    assert page.count("not trained yet") == len(BUNDLED) - 1


def test_zoo_checks_everything_before_writing_anything(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "xor.nn").write_text((SPECS / "xor.nn").read_text())
    (folder / "bad.nn").write_text((TEST_SPECS / "errors" / "E201_unknown_kind.nn").read_text())
    result = nnspec_cli("zoo", folder, "-o", tmp_path / "out")
    assert result.returncode == 1 and "bad.nn:" in result.stderr and "error[E201]" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    missing = nnspec_cli("zoo", tmp_path / "nowhere")
    assert missing.returncode == 1 and "no such folder" in missing.stderr
    a_file = nnspec_cli("zoo", folder / "xor.nn")
    assert a_file.returncode == 1 and "it is a file, not a folder" in a_file.stderr
    assert f"nnspec draw {folder / 'xor.nn'}" in a_file.stderr
    empty = nnspec_cli("zoo", TEST_SPECS / "ok" / "lib", "-o", tmp_path / "out")
    assert empty.returncode == 1 and "no .nn spec with a network" in empty.stderr


# ---- the page in a browser ---------------------------------------------------------------------
class Browser:
    """Headless Chromium driven by the DevTools protocol over a pipe: JSON messages ended by NUL."""

    def __init__(self, profile: Path):
        to_browser, self._write = _high(*os.pipe())
        self._read, from_browser = _high(*os.pipe())
        # the browser expects its commands on fd 3 and writes replies on fd 4
        command = [
            shutil.which("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "about:blank",
        ]
        shell = (
            f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-'
        )
        self.process = subprocess.Popen(
            ["bash", "-c", shell, *command],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next, self.events = b"", 0, []

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(self._receive(timeout))

    def _receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._read], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise ConnectionError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


def _high(*fds: int) -> list[int]:
    """The same pipe ends moved above fd 10, so the shell's redirections to 3 and 4 cannot
    overwrite them."""
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
    for fd in fds:
        os.close(fd)
    return moved


def load_page(url: str, profile: Path) -> tuple[list[str], np.ndarray]:
    """Open `url`, wait for it to load; return the console errors (and failed loads) and a
    full-page screenshot."""
    if shutil.which("chromium") is None:
        pytest.fail(
            "chromium is required (NNSPEC_REQUIRE_BROWSER is set) but not installed: "
            "apt-get install chromium"
        )
    browser = Browser(profile)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session)
        browser.send("Page.navigate", session, url=url)
        browser.wait_for("Page.loadEventFired")
        shot = browser.send(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
        )
        errors = [_describe(e) for e in browser.events if _is_error(e)]
    finally:
        browser.close()
    from matplotlib.image import imread

    return errors, imread(io.BytesIO(base64.b64decode(shot["data"])), format="png")


def _is_error(event: dict) -> bool:
    method, params = event.get("method"), event.get("params", {})
    return (
        method == "Runtime.exceptionThrown"
        or (method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"))
        or (method == "Log.entryAdded" and params["entry"]["level"] == "error")
    )


def _describe(event: dict) -> str:
    return json.dumps(event.get("params"))[:300]


needs_browser = pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("NNSPEC_REQUIRE_BROWSER"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)


@needs_browser
def test_the_page_loads_in_chromium_without_console_errors(zoo, tmp_path):
    errors, shot = load_page((zoo / "index.html").as_uri(), tmp_path / "profile")
    assert errors == []
    assert shot.shape[0] > 1000
    input_fill = (
        np.array([0xFF, 0xCC, 0x00]) / 255
    )  # the input cells: the diagrams were loaded and drawn
    assert (np.abs(shot[..., :3] - input_fill).max(axis=-1) < 0.02).sum() > 500


@needs_browser
def test_the_browser_check_sees_a_broken_page(tmp_path):
    """The harness itself: a missing image and a script error are reported, so a clean page
    means clean."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.svg"><script>console.error("boom")</script></body></html>'
    )
    errors, _ = load_page(page.as_uri(), tmp_path / "profile")
    assert any("missing.svg" in e for e in errors) and any("boom" in e for e in errors)
