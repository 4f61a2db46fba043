"""A local HTTP server that stands in for our callback URLs in tests of mpesa.fake and the
Daraja client: it keeps every POST (path, raw body, Content-Type) and answers each path
as told (by default `{"ResultCode": 0, "ResultDesc": "Accepted"}`)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    raw: bytes
    content_type: str

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class CallbackReceiver:
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> CallbackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = receiver.answers.get(
                    self.path, (200, {"ResultCode": 0, "ResultDesc": "Accepted"}))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, raw, self.headers.get("Content-Type", "")))
                    receiver._lock.notify_all()
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """The POSTs to `path` once there are `count` of them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([r for r in self.received if r.path == path]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no {count} POST(s) to {path} within {timeout} s"
                self._lock.wait(left)
            return [r for r in self.received if r.path == path]
