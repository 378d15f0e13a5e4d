"""Start the real Streamlit server and a real headless Chromium for end-to-end tests."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url: str, proc: subprocess.Popen, log: Path, *, timeout: float,
                       what: str, expect: bytes | None = None) -> None:
    """Poll ``url`` until it answers (with ``expect``, if given); fail with the server's
    log tail if the process dies or the time runs out."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if expect is None or r.read() == expect:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{what} did not start: " + log.read_text()[-2000:])
        time.sleep(0.3)


def start_streamlit(db: Path, *, timeout: float = 90, extra_args: Sequence[str] = (),
                    env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on a free loopback port against ``db``, answering; the
    caller stops it (tests that kill the server on purpose need the process).
    ``extra_args`` go after ours on the command line (``--secrets.files FILE``);
    ``env`` is added to the environment."""
    port = free_port()
    env = {**os.environ, "CANDIST_DB": str(db), "HF_HUB_OFFLINE": "1", **(env or {})}
    log_path = db.parent / f"streamlit-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             *extra_args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url + "/_stcore/health", proc, log_path, timeout=timeout,
                           what="streamlit", expect=b"ok")
    except RuntimeError:
        stop(proc)
        raise
    return proc, url


@contextlib.contextmanager
def streamlit_server(db: Path, *, timeout: float = 90, extra_args: Sequence[str] = (),
                     env: Mapping[str, str] | None = None):
    """``streamlit run app.py`` against ``db`` for the block; yields the URL."""
    proc, url = start_streamlit(db, timeout=timeout, extra_args=extra_args, env=env)
    try:
        yield url
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, *, grace: float = 10) -> None:
    """Terminate a server we started, killing it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def chromium():
    """A headless Playwright Browser in Debian's chromium (never a browser download of
    Playwright's), for tests that need several contexts (several signed-in people)."""
    from playwright.sync_api import sync_playwright
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("chromium is not installed: run 'make test' (it installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def chromium_page():
    """A Playwright page in Debian's chromium (never a browser download of Playwright's)."""
    with chromium() as browser:
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400,
                                                                       "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()
