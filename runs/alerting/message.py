"""A message's shape: a title, lines and a link, written out as markdown (WeCom, DingTalk) or
plain text (mail, the webhook's ``text``), each fitted to a channel's size limit; and how a
database value becomes fit for one of its lines. What each event says is
``runs.alerting.messages``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import translation
from django.utils.translation import ngettext

from runs.shown_text import labelled, visible

VALUE_CHARS = 120
MARKUP = str.maketrans({"<": "‹", ">": "›", "[": "［", "]": "］", "*": "∗", "`": "'", "#": "＃"})


@dataclass(frozen=True)
class Message:
    event: str
    severity: str
    title: str
    lines: list[str] = field(default_factory=list)
    link: str = ""
    link_text: str = ""
    # What it is written in: a channel formats it later, outside render's language.
    language: str = "en"

    def markdown(self, limit: int, *, colour: bool = False) -> str:
        title = self.title
        if colour and self.severity in {"critical", "warning"}:
            title = f'<font color="warning">{title}</font>'
        head = f"### {title}"
        with translation.override(self.language):
            # Without TENDEROPS_PUBLIC_URL the link is the admin's path: shown, not linked.
            tail = f"[{self.link_text}]({self.link})" if self.is_absolute else self.body_tail
            return fit(head, [f"- {line}" for line in self.lines], tail, limit)

    def text(self, limit: int) -> str:
        with translation.override(self.language):
            return fit(self.title, self.lines, self.body_tail, limit)

    def body(self, limit: int) -> str:
        """The text without its title (a mail's subject)."""
        with translation.override(self.language):
            return fit("", self.lines, self.body_tail, limit)

    @property
    def is_absolute(self) -> bool:
        return self.link.startswith("http")

    @property
    def body_tail(self) -> str:
        return labelled(self.link_text, self.link) if self.link else ""


def fit(head: str, lines: list[str], tail: str, limit: int) -> str:
    """``head``, ``lines`` and ``tail`` joined by newlines in at most ``limit`` UTF-8 bytes:
    lines are left out from the end (saying how many) before anything is cut."""
    kept = list(lines)
    while True:
        omitted = len(lines) - len(kept)
        more = ngettext("… %(count)d more line", "… %(count)d more lines", omitted)
        note = [more % {"count": omitted}] if omitted else []
        text = "\n".join(part for part in [head, *kept, *note, tail] if part)
        if len(text.encode()) <= limit or not kept:
            break
        kept.pop()
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: max(0, limit - 3)].decode(errors="ignore") + "…"


def clean(value: Any, chars: int = VALUE_CHARS) -> str:
    """A database value fit for a message line: one line, short, no markup, its controls
    written out (a reversing kind would turn the rest of the line around)."""
    text = visible(" ".join(str(value).split()), one_line=True).translate(MARKUP)
    return text if len(text) <= chars else text[: chars - 1] + "…"
