"""A local fake of Africa's Talking's SMS API, for testing the real SDK code path.

It answers `POST /version1/messaging` like AT: form fields `username`, `to`, `message`,
header `apiKey`; a JSON body with `Content-Type: application/json` exactly (the SDK
only parses that). Per phone it answers a configurable recipient statusCode (101 Sent
by default); `fail_with` makes the whole request fail with an HTTP status; `delay`
holds the answer (to catch a worker mid-send).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

STATUS_NAMES = {100: "Processed", 101: "Success", 102: "Queued", 401: "RiskHold",
                402: "InvalidSenderId", 403: "InvalidPhoneNumber",
                404: "UnsupportedNumberType", 405: "InsufficientBalance",
                406: "UserInBlacklist", 407: "CouldNotRoute", 500: "InternalServerError",
                501: "GatewayError", 502: "RejectedByGateway"}


@dataclass
class Request:
    username: str
    api_key: str
    to: list[str]
    message: str
    sender: str | None
    accepted: list[str] = field(default_factory=list)  # phones AT took the message for


@dataclass
class FakeAfricasTalking:
    api_key: str = "test-at-key"
    statuses: dict[str, int] = field(default_factory=dict)  # phone -> recipient statusCode
    fail_with: int | None = None  # answer every request with this HTTP status
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def delivered_to(self, phone: str) -> list[str]:
        """Messages AT accepted for a phone (what the person would get)."""
        return [r.message for r in self.requests if phone in r.accepted]

    def start(self) -> FakeAfricasTalking:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = fake._answer(self.path, self.headers.get("apiKey", ""), form)
                payload = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type",
                                 "application/json" if isinstance(body, dict) else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, path: str, api_key: str, form: dict[str, str]
                ) -> tuple[int, dict[str, Any] | str]:
        if path.rstrip("/") != "/version1/messaging":
            return 404, "Not Found"
        if api_key != self.api_key:
            return 401, "The supplied authentication is invalid"
        to = [p for p in form.get("to", "").split(",") if p]
        request = Request(form.get("username", ""), api_key, to, form.get("message", ""),
                          form.get("from"))
        with self._lock:
            self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            return self.fail_with, "Internal Server Error"
        recipients = []
        for phone in to:
            code = self.statuses.get(phone, 101)
            with self._lock:
                self._counter += 1
                message_id = f"ATXid_{self._counter:08d}" if code < 200 else "None"
            recipients.append({"statusCode": code, "number": phone,
                               "status": STATUS_NAMES.get(code, "Unknown"),
                               "cost": "KES 0.8000" if code < 200 else "0",
                               "messageId": message_id})
        request.accepted = [r["number"] for r in recipients if r["statusCode"] < 200]
        sent = len(request.accepted)
        return 201, {"SMSMessageData": {
            "Message": f"Sent to {sent}/{len(to)} Total Cost: KES {0.8 * sent:.4f}",
            "Recipients": recipients}}
