"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat protocol and injects faults.

It stands in for the OpenAI cloud (which cannot be reached here). ``script`` is a queue of
behaviours consumed one per request; when it is empty, ``answer(body)`` gives the reply.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def first_label_answer(body: dict) -> str:
    """Reply with the class named in the text ("... about <label>") or the first class."""
    text = body["messages"][-1]["content"]
    system = body["messages"][0]["content"]
    names = [line.split(". ", 1)[1].split(":")[0] for line in system.splitlines()
             if line[:1].isdigit() and ". " in line]
    chosen = [n for n in names if n.lower() in text.lower()] or names[:1]
    return json.dumps({"labels": chosen, "label": chosen[0]})


class FakeOpenAI:
    def __init__(self, answer=first_label_answer):
        self.answer = answer
        self.script: deque = deque()
        self.requests: list[dict] = []
        self.headers: list[dict] = []   # request headers, lower-cased names
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.times.append(time.perf_counter())
                    behaviour = fake.script.popleft() if fake.script else None
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._behave(body, behaviour)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _behave(self, body, behaviour):
                if fake.delay:
                    time.sleep(fake.delay)
                if behaviour == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if behaviour == "hang":
                    fake._stop.wait(30)
                    self.close_connection = True
                    return
                if behaviour == "malformed":
                    return self._send_raw(200, b'{"choices": [ {"message": ')
                if behaviour == "empty_choices":
                    return self._send(200, _completion(None, body, choices=False))
                if isinstance(behaviour, dict) and "status" in behaviour:
                    return self._send(behaviour["status"], behaviour.get(
                        "body", {"error": {"message": "injected", "type": "server_error"}}),
                        behaviour.get("headers", {}))
                if isinstance(behaviour, dict) and "content" in behaviour:
                    return self._send(200, _completion(behaviour["content"], body))
                self._send(200, _completion(fake.answer(body), body))

            def _send(self, status, payload, headers=None):
                self._send_raw(status, json.dumps(payload).encode(), headers)

            def _send_raw(self, status, data, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if "messages" in r]


def _completion(content, body, *, choices=True):
    prompt = sum(len(m["content"]) for m in body.get("messages", [])) // 4
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]
            if choices else [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 7,
                      "total_tokens": prompt + 7}}
