"""The robots' signatures, exactly as their vendors document them.

DingTalk custom robot, with a secret (加签): ``timestamp`` is the time in milliseconds;
``sign`` = base64(HMAC-SHA256(key=secret, message="{timestamp}\\n{secret}")), URL-encoded; both
are query parameters beside ``access_token``. DingTalk refuses a timestamp more than an hour
from its clock.

Feishu / Lark custom bot, with a secret (签名校验): ``timestamp`` is the time in seconds;
``sign`` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}", message=b"")); both go in the
JSON body. Feishu refuses (code 19021) a signature that does not match or a timestamp more
than an hour from its clock.

Test vectors (tests/test_alert_signing.py) pin both to independently published values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """The signature before URL-encoding."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def dingtalk_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with ``timestamp`` and the URL-encoded ``sign`` added (replacing any)."""
    parts = urlsplit(url)
    kept = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in {"timestamp", "sign"}
    ]
    signed = f"timestamp={timestamp_ms}&sign={quote_plus(dingtalk_sign(timestamp_ms, secret))}"
    query = f"{urlencode(kept)}&{signed}" if kept else signed
    return urlunsplit(parts._replace(query=query))


def feishu_sign(timestamp_s: int, secret: str) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
