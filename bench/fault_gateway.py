"""The fault harness's SMS gateway: a fake of Africa's Talking's SMS API (the same
answer shape as `tests/fake_at.py`, which the SDK parses) that can answer 500 or hang
past the SDK's read timeout on demand, and keeps every message it took, with the
message id it gave, the time, and the mode it was in.

A message "went" when the fake took it: in `timeout` mode it takes the message and then
answers too late, as a real gateway whose answer is lost would; the sender retries, and
the person gets it twice. An answer that came later than the SDK waits, in any mode (a
loaded machine), is noted as lost too (`lost`). That is how the harness tells SMS sent
twice, and why, from SMS lost.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

API_KEY = "faults-at-key-0123456789"
OK, FAIL_500, TIMEOUT = "ok", "500", "timeout"
HANG_SECONDS = 11.0  # past the SDK's 9.05 s read timeout
SDK_READ_TIMEOUT = 9.0  # an answer later than this never reached the sender


@dataclass(frozen=True)
class Taken:
    """One message the gateway took for one phone."""

    message_id: str
    phone: str
    text: str
    at: float  # time.monotonic()
    mode: str  # the gateway's mode when it took it


@dataclass
class FakeGateway:
    mode: str = OK
    taken: list[Taken] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # by mode
    lost: set[str] = field(default_factory=set)  # message ids whose answer the sender never got
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                started = time.monotonic()
                status, body = gateway.answer(self.path, self.headers.get("apiKey", ""), form)
                payload = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
                answered = True
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json"
                                     if isinstance(body, dict) else "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the sender gave up waiting
                    answered = False
                if not answered or time.monotonic() - started > SDK_READ_TIMEOUT:
                    gateway.answer_lost(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str, api_key: str, form: dict[str, str]
               ) -> tuple[int, dict[str, Any] | str]:
        if path.rstrip("/") != "/version1/messaging":
            return 404, "Not Found"
        if api_key != API_KEY:
            return 401, "The supplied authentication is invalid"
        mode = self.mode
        with self._lock:
            self.requests[mode] += 1
        if mode == FAIL_500:
            return 500, "Internal Server Error"
        recipients = [self._take(phone, form.get("message", ""), mode)
                      for phone in form.get("to", "").split(",") if phone]
        if mode == TIMEOUT:
            time.sleep(HANG_SECONDS)
        return 201, {"SMSMessageData": {
            "Message": f"Sent to {len(recipients)}/{len(recipients)}",
            "Recipients": recipients}}

    def answer_lost(self, body: dict[str, Any] | str) -> None:
        """The sender never read this answer (it came too late, or the sender had gone):
        the messages in it went, but the sender will send them again."""
        if not isinstance(body, dict):
            return
        with self._lock:
            self.lost.update(r["messageId"] for r in body["SMSMessageData"]["Recipients"])

    def _take(self, phone: str, text: str, mode: str) -> dict[str, Any]:
        with self._lock:
            self._counter += 1
            message_id = f"ATXid_{self._counter:08d}"
            self.taken.append(Taken(message_id, phone, text, time.monotonic(), mode))
        return {"statusCode": 101, "number": phone, "status": "Success",
                "cost": "KES 0.8000", "messageId": message_id}

    def snapshot(self) -> list[Taken]:
        with self._lock:
            return list(self.taken)

    def texts_to(self, phone: str) -> list[str]:
        with self._lock:
            return [t.text for t in self.taken if t.phone == phone]
