"""How each channel would show an alert: the payload tenderops sends, rendered as the robots
render it, for the admin's preview page. Nothing is sent."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from runs.alerting.channels import CHANNELS, MAIL_TEXT_BYTES, webhook_document
from runs.alerting.messages import render
from runs.models import Alert, AlertChannel, AlertEvent

LINK = re.compile(r"\[([^\]]*)\]\((https?://[^)\s]+)\)")
BOLD = re.compile(r"\*\*([^*]+)\*\*")
FONT = re.compile(r"&lt;font color=&quot;(\w+)&quot;&gt;(.*?)&lt;/font&gt;")


@dataclass(frozen=True)
class Preview:
    channel: str
    label: str
    destination: str  # masked
    configured: bool
    html: SafeString


def sample_alert(requested_by: str) -> Alert:
    """An unsaved test alert, as ``send_test_alert`` would record it."""
    return Alert(
        event=AlertEvent.TEST, facts={"requested_by": requested_by}, raised_at=timezone.now()
    )


def previews(alert: Alert) -> list[Preview]:
    message = render(alert)
    shown = []
    for name, channel in CHANNELS.items():
        _url, payload = (
            (None, None) if name == AlertChannel.EMAIL else channel.request(alert, message)
        )
        if name in {AlertChannel.WECOM}:
            html = markdown_html(payload["markdown"]["content"])
        elif name == AlertChannel.DINGTALK:
            html = markdown_html(payload["markdown"]["text"])
        elif name == AlertChannel.FEISHU:
            html = feishu_html(next(iter(payload["content"]["post"].values())))
        elif name == AlertChannel.WEBHOOK:
            document = webhook_document(alert, message)
            html = format_html(
                '<pre class="alert-json">{}</pre>',
                json.dumps(document, ensure_ascii=False, indent=2, default=str),
            )
        else:
            html = format_html(
                '<div class="alert-mail-subject">{}</div><pre class="alert-mail-body">{}</pre>',
                message.title,
                message.body(MAIL_TEXT_BYTES),
            )
        shown.append(
            Preview(
                channel=name,
                label=channel.label,
                destination=channel.destination() if channel.configured() else "",
                configured=channel.configured(),
                html=html,
            )
        )
    return shown


def markdown_html(text: str) -> SafeString:
    """The markdown tenderops writes (headings, bullets, links, bold, WeCom's font colours)
    as the robots show it; everything else is shown as text."""
    rendered = []
    for line in text.split("\n"):
        html = escape(line)
        html = FONT.sub(r'<span class="alert-font-\1">\2</span>', html)
        html = LINK.sub(r'<a href="\2">\1</a>', html)
        html = BOLD.sub(r"<strong>\1</strong>", html)
        if line.startswith("### "):
            rendered.append(f'<div class="alert-md-title">{html[4:]}</div>')
        elif line.startswith("- "):
            rendered.append(f'<div class="alert-md-item">• {html[2:]}</div>')
        else:
            rendered.append(f"<div>{html}</div>")
    return mark_safe("".join(rendered))  # noqa: S308 - every line was escaped above


def feishu_html(post: dict) -> SafeString:
    paragraphs = format_html_join(
        "",
        "<div>{}</div>",
        ((_feishu_paragraph(paragraph),) for paragraph in post.get("content", [])),
    )
    return format_html('<div class="alert-md-title">{}</div>{}', post.get("title", ""), paragraphs)


def _feishu_paragraph(elements: list[dict]) -> SafeString:
    return format_html_join(
        "",
        "{}",
        (
            (
                format_html('<a href="{}">{}</a>', e.get("href", ""), e.get("text", ""))
                if e.get("tag") == "a"
                else e.get("text", ""),
            )
            for e in elements
        ),
    )
