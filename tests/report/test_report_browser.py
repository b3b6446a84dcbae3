"""The HTML report in a real headless Chromium (Debian's chromium-headless-shell), driven
over the DevTools protocol on a pipe: no console error, and each plot the page names
(``<figure data-plot>``) is drawn where the page puts it — the screenshot is not blank
inside its box.

By hand (the same screenshot)::

    recentd replay brute.pcap --rules rules.sh --report /tmp/report.html
    chromium-headless-shell --no-sandbox --hide-scrollbars --window-size=1200,2400 \\
        --screenshot=/tmp/report.png file:///tmp/report.html
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from recentd.cli.main import main
from tests.report.test_report import brute_force_capture, generated_log

BROWSERS = ("chromium-headless-shell", "chromium")


class DevTools:
    """Chromium with ``--remote-debugging-pipe``: JSON messages, NUL-terminated, on fds 3/4."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # in the child: its fd 3 reads our messages, fd 4 writes answers
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)  # out of 3/4's way first
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "--no-first-run",
             "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4),  # noqa: PLW1509 - two dup2 calls, no lock taken
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []
        self.session = ""

    def call(self, method: str, **params: object) -> dict:
        self._next += 1
        message: dict = {"id": self._next, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            assert chunk, "chromium closed the pipe"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def capture_report(tmp_path: Path, report: Path) -> None:
    capture, rules = brute_force_capture(tmp_path)
    assert main(["replay", str(capture), "--rules", str(rules), "--no-progress",
                 "--report", str(report)]) == 0


def logs_report(tmp_path: Path, report: Path) -> None:
    log, config, rules = generated_log(tmp_path)
    assert main(["logs", "replay", str(log), "--config", str(config), "--rules", str(rules),
                 "--year", "2025", "--report", str(report)]) == 0
    assert report.read_text().count("<svg") == 2


@pytest.mark.parametrize("make", [capture_report, logs_report], ids=["replay", "logs-replay"])
def test_report_renders_in_chromium_without_errors(tmp_path, make):
    binary = next((b for b in BROWSERS if shutil.which(b)), None)
    if binary is None:
        pytest.fail("no chromium: scripts/setup.sh installs chromium-headless-shell")
    report = tmp_path / "report.html"
    make(tmp_path, report)
    browser = DevTools(binary, tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        browser.session = browser.call("Target.attachToTarget", targetId=target,
                                       flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        browser.call("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                     deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", url=report.as_uri())
        browser.wait_event("Page.loadEventFired")
        boxes = json.loads(browser.call("Runtime.evaluate", returnByValue=True, expression="""
            JSON.stringify([...document.querySelectorAll('figure[data-plot]')].map(f => {
                const r = f.getBoundingClientRect();
                return {name: f.dataset.plot, x: r.x, y: r.y + scrollY, w: r.width,
                        h: r.height};
            }))""")["result"]["value"])  # fmt: skip
        shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    finally:
        browser.close()
    errors = [e for e in browser.events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled"
                  and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    png = base64.b64decode(shot["data"])
    (tmp_path / "report.png").write_bytes(png)
    pixels = image.imread(io.BytesIO(png))[:, :, :3]
    assert [box["name"] for box in boxes] == ["timeline", "distribution"]
    for box in boxes:
        assert box["w"] > 600 and box["h"] > 150, box
        inside = pixels[int(box["y"]):int(box["y"] + box["h"]),
                        int(box["x"]):int(box["x"] + box["w"])]
        drawn = (inside < 0.9).any(axis=2).mean()
        colours = len(np.unique((inside * 255).astype(np.uint8).reshape(-1, 3), axis=0))
        assert drawn > 0.03, (box["name"], drawn)  # axes, lines, text: not blank
        assert colours > 20, (box["name"], colours)  # several series in colour
