"""The channels: what each is sent, how its answer is read, how often it may be sent to.

HTTP goes through ``runs.alerting.http``: one POST within a deadline for the whole exchange,
no redirect followed. An answer is read up to 64 KB and recorded redacted and shortened; a
channel's address and secrets never appear in an answer, a log line or an error.

How answers are read (what the vendors document):

| channel | sent | throttled (back off) | configuration error (no retry) |
|---|---|---|---|
| JSON webhook | any 2xx | 429 (``Retry-After``) | 401, 403, 404, 410 |
| WeCom | ``errcode`` 0 | ``errcode`` 45009 | 93000 (bad key), 93004 (robot disabled), 93008 (not in the group), HTTP 401/403/404 |
| DingTalk | ``errcode`` 0 | ``errcode`` 130101 (10 minutes), 410100 | 310000 (signature, keyword or IP), 300001, 300005 (no such token), 400101, 400102, 400106 (robot missing or disabled), 400013 (group dissolved) |
| Feishu / Lark | ``code`` 0 | ``code`` 11232 | 19001 (no such webhook token), 19021 (signature or timestamp), 19022 (IP), 19024 (keyword) |

Anything else: a 5xx, a timeout or a network error is retried; another refusal fails.
"""  # noqa: E501

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage

from runs.alerting.http import Deadline, describe, post_json
from runs.alerting.mail import Refused, alert_connection, refused_recipients, smtp_server
from runs.alerting.message import Message
from runs.alerting.signing import dingtalk_url, feishu_sign
from runs.logging import mask_url, redact
from runs.maintenance.alerts import CHANNEL_SETTINGS
from runs.models import Alert, AlertAttempt, AlertChannel
from runs.shown_text import shortened, visible

Result = AlertAttempt.Result
ANSWER_CHARS = 500
# What each robot accepts (bytes of message text); the JSON webhook and mail keep theirs
# short enough for any chat program too.
WECOM_MARKDOWN_BYTES = 4_096
DINGTALK_MARKDOWN_BYTES = 4_000
FEISHU_TEXT_BYTES = 16_000
# Feishu takes a body of at most 20 KB: the post's JSON within this leaves room for the rest.
FEISHU_POST_BYTES = 19_000
WEBHOOK_TEXT_BYTES = 16_000
MAIL_TEXT_BYTES = 16_000


@dataclass(frozen=True)
class Outcome:
    result: str  # an AlertAttempt.Result
    answer: str
    http_status: int | None = None
    pause_seconds: int = 0  # throttled: the channel sends nothing for this long
    # Mail: the recipients refused for now, whom the next attempt mails alone.
    left: tuple[str, ...] = ()
    # Sent, but not to everyone: logged for the journal as a failure is.
    partial: bool = False

    def __post_init__(self) -> None:
        # A robot's or a mail server's words, shown in the admin, the CLI and the journal:
        # their escape sequences and bidirectional controls written out, never obeyed.
        object.__setattr__(self, "answer", visible(self.answer, one_line=True))


class Channel:
    name: str
    setting: str
    # (seconds, at most this many attempts): kept under each vendor's documented limit.
    rate_limits: tuple[tuple[int, int], ...] = ((60, 60),)
    throttle_codes: dict[int, int] = {}  # code -> seconds to pause
    config_codes: frozenset[int] = frozenset()

    @property
    def label(self) -> str:
        return str(AlertChannel(self.name).label)

    def configured(self) -> bool:
        return bool(getattr(settings, self.setting))

    def destination(self) -> str:
        return mask_url(getattr(settings, self.setting))

    def send(
        self, alert: Alert, message: Message, timeout: float, left: Sequence[str] | None = None
    ) -> Outcome:
        """One attempt; ``left``: what an earlier one left to send to (mail's recipients)."""
        url, payload = self.request(alert, message)
        return self.read(*post_json(url, payload, timeout))

    def request(self, alert: Alert, message: Message) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def read(self, status: int, body: str, retry_after: str | None) -> Outcome:
        """A robot's answer: HTTP 200 and a JSON code."""
        answer = shorten(body) or empty_answer(status)
        if body.strip() and status and not 200 <= status < 300:
            # Where operators read it (the delivery's last answer, send_test_alert's line):
            # "boom" alone hid the 500.
            answer = shorten(f"HTTP {status}: {body}")
        if status == 0:  # no answer: a network error or a timeout
            return Outcome(Result.ERROR, answer)
        if status == 429:
            return Outcome(Result.THROTTLED, answer, status, retry_seconds(retry_after))
        if status >= 500:
            return Outcome(Result.ERROR, answer, status)
        if status in {401, 403, 404, 410}:
            return Outcome(Result.MISCONFIGURED, answer, status)
        if not 200 <= status < 300:
            return Outcome(Result.REJECTED, answer, status)
        code = answer_code(body)
        if code == 0:
            return Outcome(Result.SENT, answer, status)
        if code is None:  # not the robot's JSON: a proxy's page ("under maintenance"), retried
            return Outcome(Result.ERROR, answer, status)
        if code in self.throttle_codes:
            return Outcome(Result.THROTTLED, answer, status, self.throttle_codes[code])
        if code in self.config_codes:
            return Outcome(Result.MISCONFIGURED, answer, status)
        if code == -1:  # "system busy"
            return Outcome(Result.ERROR, answer, status)
        return Outcome(Result.REJECTED, answer, status)


def empty_answer(status: int) -> str:
    """What to record of an answer without a body: its status, and why a redirect failed."""
    if 300 <= status < 400:
        return f"HTTP {status}: a redirect, which tenderops does not follow (set the final address)"
    return f"HTTP {status}, no body" if status else ""


class WebhookChannel(Channel):
    """Any HTTP endpoint: a versioned JSON document (docs/reference.md, "The alert webhook")."""

    name = AlertChannel.WEBHOOK
    setting = CHANNEL_SETTINGS[name]
    schema = "tenderops.alert.v1"

    def request(self, alert, message):
        return settings.TENDEROPS_ALERT_WEBHOOK_URL, webhook_document(alert, message)

    def read(self, status, body, retry_after):
        if 200 <= status < 300:
            return Outcome(Result.SENT, shorten(body) or f"HTTP {status}", status)
        return super().read(status, body, retry_after)


def webhook_document(alert: Alert, message: Message) -> dict[str, Any]:
    facts = alert.facts or {}
    kinds = sorted(facts.get("kinds") or {}) or ([alert.kind] if alert.kind else [])
    return {
        "schema": WebhookChannel.schema,
        "alert_id": alert.pk,
        "event": alert.event,
        "severity": message.severity,
        "kinds": kinds,
        "raised_at": alert.raised_at.isoformat(),
        "language": settings.TENDEROPS_ALERT_LANGUAGE,
        "title": message.title,
        "text": message.text(WEBHOOK_TEXT_BYTES),
        "link": message.link if message.is_absolute else None,  # none without a public URL
        "facts": facts,
    }


class WeComChannel(Channel):
    """WeCom (企业微信) group robot: markdown, up to 4,096 bytes; 20 messages a minute."""

    name = AlertChannel.WECOM
    setting = CHANNEL_SETTINGS[name]
    rate_limits = ((60, 18),)
    throttle_codes = {45009: 60}
    config_codes = frozenset({93000, 93004, 93008})

    def request(self, alert, message):
        content = message.markdown(WECOM_MARKDOWN_BYTES, colour=True)
        return settings.TENDEROPS_WECOM_WEBHOOK_URL, {
            "msgtype": "markdown",
            "markdown": {"content": content},
        }


class DingTalkChannel(Channel):
    """DingTalk custom robot: markdown; signed when a secret is set (else keyword or IP
    mode); 20 messages a minute, then throttled for 10 minutes (130101)."""

    name = AlertChannel.DINGTALK
    setting = CHANNEL_SETTINGS[name]
    rate_limits = ((60, 18),)
    throttle_codes = {130101: 600, 410100: 600}
    config_codes = frozenset({310000, 300001, 300005, 400101, 400102, 400106, 400013})

    def request(self, alert, message):
        url = settings.TENDEROPS_DINGTALK_WEBHOOK_URL
        if settings.TENDEROPS_DINGTALK_SECRET:
            url = dingtalk_url(url, settings.TENDEROPS_DINGTALK_SECRET, int(time.time() * 1000))
        text = message.markdown(DINGTALK_MARKDOWN_BYTES)
        return url, {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}}


class FeishuChannel(Channel):
    """Feishu / Lark custom bot: rich text (``post``); signed when a secret is set; 100
    messages a minute and 5 a second; a body of at most 20 KB."""

    name = AlertChannel.FEISHU
    setting = CHANNEL_SETTINGS[name]
    rate_limits = ((60, 90), (1, 4))
    throttle_codes = {11232: 60}
    config_codes = frozenset({19001, 19021, 19022, 19024})

    def request(self, alert, message):
        payload: dict[str, Any] = {"msg_type": "post", "content": {"post": feishu_post(message)}}
        if settings.TENDEROPS_FEISHU_SECRET:
            timestamp = int(time.time())
            payload["timestamp"] = str(timestamp)
            payload["sign"] = feishu_sign(timestamp, settings.TENDEROPS_FEISHU_SECRET)
        return settings.TENDEROPS_FEISHU_WEBHOOK_URL, payload


def feishu_post(message: Message) -> dict[str, Any]:
    """The post, its text shortened until its JSON fits: each line costs about 30 bytes of
    markup besides its text (400 short lines of 16,000 bytes made a body of 23 KB)."""
    limit = FEISHU_TEXT_BYTES
    while True:
        post = _feishu_post(message, limit)
        size = len(json.dumps(post, ensure_ascii=False).encode())
        if size <= FEISHU_POST_BYTES or limit <= 1_000:
            return post
        limit -= size - FEISHU_POST_BYTES


def _feishu_post(message: Message, limit: int) -> dict[str, Any]:
    language = "zh_cn" if settings.TENDEROPS_ALERT_LANGUAGE == "zh-hans" else "en_us"
    body = message.body(limit).split("\n")  # the title has its own field
    if message.is_absolute:
        body = body[:-1]  # the link's line, sent as a link instead
    content = [[{"tag": "text", "text": line}] for line in body]
    if message.is_absolute:
        content.append([{"tag": "a", "text": message.link_text, "href": message.link}])
    return {language: {"title": message.title, "content": content}}


class EmailChannel(Channel):
    """Django's SMTP mail to ``TENDEROPS_ALERT_EMAILS``."""

    name = AlertChannel.EMAIL
    setting = CHANNEL_SETTINGS[name]
    rate_limits = ((60, 20),)

    def destination(self) -> str:
        return ", ".join(settings.TENDEROPS_ALERT_EMAILS)

    def send(self, alert, message, timeout, left=None):
        recipients = list(settings.TENDEROPS_ALERT_EMAILS)
        if left:  # the others have the mail: those refused for now alone, if still configured
            recipients = [recipient for recipient in recipients if recipient in left]
            if not recipients:
                return Outcome(Result.REJECTED, "none of the recipients left is configured now")
        server = smtp_server()
        with Deadline(timeout) as deadline:
            outcome = self._mail(recipients, message, timeout, deadline, server)
        # A read the deadline cut short may end in any error, or none.
        return Outcome(Result.ERROR, f"{server}: timed out") if deadline.expired else outcome

    def _mail(
        self,
        recipients: list[str],
        message: Message,
        timeout: float,
        deadline: Deadline,
        server: str,
    ) -> Outcome:
        connection = alert_connection(timeout, deadline)
        try:
            mail = EmailMessage(
                subject=message.title,
                body=message.body(MAIL_TEXT_BYTES),
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=recipients,
            )
            # The connection's own send: Django 6.1 deprecates a message's ``connection``.
            connection.send_messages([mail])
        except smtplib.SMTPNotSupportedError as error:  # credentials for a server taking none
            return Outcome(Result.MISCONFIGURED, shorten(f"{server}: {error}"))
        except smtplib.SMTPRecipientsRefused as error:  # every one: for now, or for good
            refused = refused_recipients(recipients, connection.envelope, error.recipients)
            return recipients_outcome(server, recipients, refused)
        except smtplib.SMTPResponseException as error:  # to AUTH, MAIL FROM, DATA, ...
            return Outcome(response_result(error), shorten(f"{server}: {error}"))
        except (smtplib.SMTPException, OSError) as error:
            return Outcome(Result.ERROR, shorten(f"{server}: {describe(error)}"))
        except ValueError as error:
            # A text the mail cannot carry (an address, a header, a password smtplib cannot
            # encode): the same at every attempt. It was retried as if the server were down.
            return Outcome(Result.MISCONFIGURED, shorten(f"{server}: {describe(error)}"))
        refused = refused_recipients(recipients, connection.envelope, connection.refused)
        return recipients_outcome(server, recipients, refused)


def response_result(error: smtplib.SMTPResponseException) -> str:
    """A 4yz is "try again later" (RFC 5321: greylisting, a busy server, "454 temporary
    authentication failure"), retried as other temporary errors; a 5yz is not: wrong
    credentials or a refused sender are a configuration error."""
    if temporary(error.smtp_code):
        return Result.ERROR
    if isinstance(error, smtplib.SMTPAuthenticationError | smtplib.SMTPSenderRefused):
        return Result.MISCONFIGURED
    return Result.REJECTED


def temporary(code: int) -> bool:
    """An SMTP answer that says "try again later" (4yz, RFC 5321)."""
    return 400 <= code < 500


def recipients_outcome(server: str, recipients: list[str], refused: Refused) -> Outcome:
    """A mail to ``recipients`` that the server refused for some or all (``refused``), each
    named. Refused for now (4yz, RFC 5321: greylisting, a full mailbox), they are mailed
    again, alone: the others have it. Refused for good (5yz: an unknown user), the mail counts
    as sent to the others and is not sent again (they would get it twice); refused for good
    to every one, it is a configuration error."""
    accepted = len(recipients) - len(refused)
    if not refused:
        return Outcome(Result.SENT, f"{server}: accepted for {accepted} recipient(s)")
    named = "; ".join(f"{to} ({code} {words})" for to, (code, words) in refused.items())
    took = f"accepted for {accepted} of {len(recipients)} recipient(s); " if accepted else ""
    answer = f"{server}: {took}refused: {named}"
    later = tuple(to for to, (code, _words) in refused.items() if temporary(code))
    if later:
        answer = f"{answer}; those refused for now are mailed again, alone"
        return Outcome(Result.ERROR, shorten(answer), left=later)
    if not accepted:  # every recipient refused for good
        return Outcome(Result.MISCONFIGURED, shorten(answer))
    return Outcome(Result.SENT, shorten(answer), partial=True)


CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        EmailChannel(),
        WebhookChannel(),
        WeComChannel(),
        DingTalkChannel(),
        FeishuChannel(),
    )
}


def shorten(text: str) -> str:
    """An answer as recorded: secrets redacted, one line, at most ANSWER_CHARS."""
    return shortened(" ".join(redact(text).split()), ANSWER_CHARS, one_line=True)


def answer_code(body: str) -> int | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    for key in ("errcode", "code", "StatusCode"):
        if isinstance(answer.get(key), int):
            return answer[key]
    return None


def retry_seconds(header: str | None) -> int:
    seconds = (header or "").strip()
    # ASCII digits, and few: isdigit() takes "²", which int() refuses, and int() refuses
    # more than 4,300 digits.
    if seconds.isascii() and seconds.isdigit() and len(seconds) <= 9:
        return min(int(seconds), 3_600)
    return 60
