"""Real servers on 127.0.0.1 that stand in for the robots and the mail server in tests: each
records what it receives and answers as the test tells it to (no mocked transport)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.processes import free_port

# The vendors refuse a timestamp more than an hour from their clock.
VENDOR_WINDOW_SECONDS = 3_600


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def json(self):
        return json.loads(self.body)


Answer = Callable[[Received], tuple[int, object]]


def answer_ok(code_key: str = "errcode") -> Answer:
    def answer(_request: Received) -> tuple[int, object]:
        if code_key == "code":
            return 200, {"code": 0, "msg": "success", "data": {}}
        return 200, {"errcode": 0, "errmsg": "ok"}

    return answer


@dataclass
class Receiver:
    """An HTTP server in a thread; ``answer`` decides each reply (status, JSON body)."""

    answer: Answer
    hang_seconds: float = 0.0  # hold each request this long before answering
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook", query: str = "") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}" + (f"?{query}" if query else "")

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {count} requests "
                    f"(got {len(self.requests)})"
                )
            return list(self.requests)

    def record(self, request: Received) -> None:
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()


@contextmanager
def receiver(answer: Answer | None = None, *, hang_seconds: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(answer or answer_ok(), hang_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            request = Received(
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={key.lower(): value for key, value in self.headers.items()},
                body=self.rfile.read(length),
                at=time.time(),
            )
            state.record(request)
            if state.hang_seconds:
                state.released.wait(state.hang_seconds)
            status, body = state.answer(request)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout under test)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.server = server
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()


# --- the vendors' checks, as their servers make them -----------------------------------------


def check_dingtalk(request: Received, secret: str, started: float) -> None:
    """``timestamp`` (ms) and ``sign`` in the query, the signature DingTalk computes, the
    time within the test's own window and DingTalk's hour."""
    timestamp = request.query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert request.query["sign"] == [expected]
    sent = int(timestamp) / 1000
    assert started - 1 <= sent <= request.at + 1
    assert abs(request.at - sent) <= VENDOR_WINDOW_SECONDS
    body = request.json
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("tenderops")
    assert len(body["markdown"]["text"].encode()) <= 4_000


def check_feishu(request: Received, secret: str, started: float) -> None:
    body = request.json
    timestamp = body["timestamp"]
    expected = base64.b64encode(
        hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert body["sign"] == expected
    assert int(started) - 1 <= int(timestamp) <= request.at + 1
    assert abs(request.at - int(timestamp)) <= VENDOR_WINDOW_SECONDS
    assert body["msg_type"] == "post"
    post = next(iter(body["content"]["post"].values()))
    assert post["title"].startswith("tenderops")
    assert len(request.body) <= 20_000


def check_wecom(request: Received) -> None:
    body = request.json
    assert body["msgtype"] == "markdown"
    assert len(body["markdown"]["content"].encode()) <= 4_096
    assert "tenderops" in body["markdown"]["content"]


def check_webhook(request: Received) -> None:
    body = request.json
    assert body["schema"] == "tenderops.alert.v1"
    assert request.headers["content-type"].startswith("application/json")
    assert {"alert_id", "event", "severity", "kinds", "raised_at", "title", "text", "facts"} <= set(
        body
    )


# --- mail ------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    port: int
    messages: list = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    # What the server answers, in turn, to RCPT TO of an address (to MAIL FROM: "MAIL")
    # instead of taking it.
    refusals: dict[str, list[str]] = field(default_factory=dict)

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        refusals = self.refusals.get("MAIL")
        if refusals:
            return refusals.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        refusals = self.refusals.get(address)
        if refusals:
            return refusals.pop(0)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        message = message_from_bytes(envelope.content)
        with self.arrived:
            self.messages.append((envelope.rcpt_tos, message))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float) -> list:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"timed out waiting for {count} mails")
            return list(self.messages)


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


@contextmanager
def mail_server(refusals: dict[str, list[str]] | None = None) -> Iterator[Mailbox]:
    mailbox = Mailbox(port=free_port(), refusals=refusals or {})
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def send_alert_mail_to(settings, port: int, **options) -> None:
    """Point the alert mail (``TENDEROPS_ALERT_SMTP``) at a server on this machine."""
    settings.TENDEROPS_ALERT_SMTP = {
        **settings.TENDEROPS_ALERT_SMTP,
        "host": "127.0.0.1",
        "port": port,
        **options,
    }
