"""Load a page in headless Chromium (Debian's `chromium` package): read the mark the report's own
script sets on <body> (`data-media`, see cli.report) and take a screenshot of the page.

Only local files are loaded and every network feature Chromium has is off (no background
networking, no component updates, no sync); a throwaway profile folder is used each time.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--mute-audio"]


def find() -> Optional[str]:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _run(binary: str, extra: List[str], page: Path, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="cos-matting-chromium-") as profile:
        proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def media_mark(page: Path, binary: Optional[str] = None, budget_ms: int = 15000, timeout: float = 120) -> str:
    """'ok', 'broken: <files>' or 'unmarked' (the page's script never finished) for `page`."""
    binary = binary or find()
    if not binary:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    dom = _run(binary, [f"--virtual-time-budget={budget_ms}", "--dump-dom"], page, timeout)
    match = re.search(r"<body[^>]*\bdata-media=\"([^\"]*)\"", dom)
    return match.group(1) if match else "unmarked"


def screenshot(page: Path, png: Path, binary: Optional[str] = None, width: int = 1280, height: int = 2400,
               budget_ms: int = 8000, timeout: float = 120) -> Path:
    binary = binary or find()
    if not binary:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    _run(binary, [f"--virtual-time-budget={budget_ms}", f"--window-size={width},{height}",
                  f"--screenshot={png.resolve()}"], page, timeout)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot at {png}")
    return png


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
    messages ending in NUL, Chromium reading fd 3 and writing fd 4; the transport Puppeteer's `pipe: true`
    uses), so no WebSocket client and nothing from npm is needed. One page (`tab`); JavaScript dialogs
    (`confirm`) are answered with `dialog_answer` and recorded in `dialogs`.

        with Chromium() as browser:
            browser.goto(url); browser.wait("document.querySelectorAll('tr').length > 1")
    """

    def __init__(self, binary: Optional[str] = None, width: int = 1280, height: int = 900,
                 extra: Optional[List[str]] = None) -> None:
        import fcntl
        import json
        import os
        import threading

        self._json = json
        binary = binary or find()
        if not binary:
            raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="cos-matting-chromium-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        # Chromium reads our commands on its fd 3 and answers on fd 4. bash renames the pipe ends (moved
        # above 9 first, so neither lands on the other's new number): no preexec_fn, which is unsafe in
        # a process with threads (Python's subprocess docs).
        ends = []
        for fd in (to_child, from_child):
            ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD, 10))
            os.close(fd)
        script = f'exec "$@" 3<&{ends[0]} 4>&{ends[1]} {ends[0]}<&- {ends[1]}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, "chromium", binary, *FLAGS, f"--user-data-dir={self._profile.name}",
             f"--window-size={width},{height}", "--remote-debugging-pipe", *(extra or []), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=tuple(ends))
        for fd in ends:
            os.close(fd)
        self._lock, self._next = threading.Lock(), 0
        self._answers: dict = {}
        self._arrived = threading.Condition()
        self.dialogs: List[str] = []
        self.dialog_answer = True
        self.console: List[str] = []
        threading.Thread(target=self._reader, daemon=True, name="cdp-reader").start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.send(domain, session=self.session)

    def _reader(self) -> None:
        import os

        buffer = b""
        while True:
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                with self._arrived:
                    self._answers["closed"] = True
                    self._arrived.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = self._json.loads(raw)
                if message.get("method") == "Page.javascriptDialogOpening":
                    self.dialogs.append(message["params"]["message"])
                    self._post("Page.handleJavaScriptDialog", {"accept": self.dialog_answer}, message.get("sessionId"))
                elif message.get("method") == "Runtime.exceptionThrown":
                    self.console.append(str(message["params"]["exceptionDetails"]))
                elif "id" in message:
                    with self._arrived:
                        self._answers[message["id"]] = message
                        self._arrived.notify_all()

    def _post(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> int:
        import os

        with self._lock:
            self._next += 1
            ident = self._next
            message = {"id": ident, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            os.write(self._write, self._json.dumps(message).encode() + b"\0")
        return ident

    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None,
             timeout: float = 30) -> dict:
        import time

        ident = self._post(method, params, session)
        deadline = time.monotonic() + timeout
        with self._arrived:
            while ident not in self._answers:
                if self._answers.get("closed") or time.monotonic() > deadline:
                    raise RuntimeError(f"chromium did not answer {method}")
                self._arrived.wait(0.2)
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url}, self.session)

    def eval(self, expression: str, timeout: float = 30) -> object:
        """The value of `expression` in the page (awaited if a promise)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, self.session, timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result.get("result", {}).get("value")

    def wait(self, expression: str, timeout: float = 20, interval: float = 0.1, message: str = "") -> object:
        """Poll until `expression` is true; on timeout the error shows the value of `message` (an expression)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(expression)
            except RuntimeError:
                value = None  # a page between two documents
            if value:
                return value
            if time.monotonic() > deadline:
                seen = f" ({message} = {self.eval(message)!r})" if message else ""
                raise AssertionError(f"not true within {timeout} s in the page: {expression}{seen}")
            time.sleep(interval)

    def screenshot(self, png: Path) -> Path:
        import base64

        data = self.send("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        png.write_bytes(base64.b64decode(data))
        return png

    def close(self) -> None:
        import os

        try:
            self._post("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for fd in (self._write, self._read):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
