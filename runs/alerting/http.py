"""One POST to a robot, over the standard library (``urllib``: proxies from the environment
are honoured), within a deadline for the whole exchange.

A socket timeout bounds each read, not the exchange: a server that trickles its answer a
byte every few seconds kept one attempt going for minutes, past its delivery's lease, so the
schedule claimed the delivery again and posted the alert twice, and both cluster workers
were busy sending while the monitor waited. A timer shuts the connection's socket at the
deadline, which ends any read in progress. No redirect is followed: a webhook that redirects
is misconfigured, and its key must not travel on.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

MAX_ANSWER_BYTES = 65_536


class Deadline:
    """Shuts the sockets it watches once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _watched(connection_class: type, deadline: Deadline) -> type:
    class Watched(connection_class):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


def _opener(deadline: Deadline) -> urllib.request.OpenerDirector:
    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # the 3xx is answered as it is

    class Http(urllib.request.HTTPHandler):
        def do_open(self, http_class, request, **kwargs):
            return super().do_open(_watched(http_class, deadline), request, **kwargs)

    class Https(urllib.request.HTTPSHandler):
        def do_open(self, http_class, request, **kwargs):
            return super().do_open(_watched(http_class, deadline), request, **kwargs)

    return urllib.request.build_opener(NoRedirects, Http, Https)


def post_json(url: str, payload: dict[str, Any], timeout: float) -> tuple[int, str, str | None]:
    """POST ``payload``; return the HTTP status, the answer's text and ``Retry-After``, all
    within ``timeout`` seconds. A network error or the deadline is answered as status 0 with
    its description."""
    data = json.dumps(payload, ensure_ascii=False).encode()
    request = urllib.request.Request(  # noqa: S310 - only http(s) addresses pass settings
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "tenderops"},
    )
    with Deadline(timeout) as deadline:
        try:
            with _opener(deadline).open(request, timeout=timeout) as response:
                answer = response.status, read_body(response), None
        except urllib.error.HTTPError as error:
            with error:
                answer = error.code, read_body(error), error.headers.get("Retry-After")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            answer = 0, describe(error), None
    # A read the timer cut short ends without an error, with what came so far.
    return (0, "timed out", None) if deadline.expired else answer


def read_body(response: Any) -> str:
    return response.read(MAX_ANSWER_BYTES).decode("utf-8", errors="replace")


def describe(error: BaseException) -> str:
    """An error as recorded: its type and message. urllib wraps a network error in a
    URLError's ``reason``, which is described instead. Other errors' ``reason`` is a text,
    part of their message (an SSLError's "CERTIFICATE_VERIFY_FAILED"): taken for the error,
    it was recorded as "str: CERTIFICATE_VERIFY_FAILED", the rest lost."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, UnicodeError):
        return f"{type(error).__name__}: {_unicode_error(error)}"
    return f"{type(error).__name__}: {error}"


def _unicode_error(error: UnicodeError) -> str:
    """Its message without the character it quotes: the text may be a password."""
    encoding = getattr(error, "encoding", None)
    reason = getattr(error, "reason", "")
    return f"{encoding or 'a codec'} cannot carry a character of the text ({reason})"
