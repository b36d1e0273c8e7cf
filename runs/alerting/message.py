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
    kept = _lines_that_fit(head, lines, tail, limit)
    text = _text([head, *lines[:kept], _more(len(lines) - kept), tail])
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: max(0, limit - 3)].decode(errors="ignore") + "…"


def _lines_that_fit(head: str, lines: list[str], tail: str, limit: int) -> int:
    """How many of ``lines`` (from the first) fit with the note of those left out: the most,
    or none. Each line is measured once and the text's size kept as a sum: leaving one line
    out at a time and joining the rest again took 20 s for a digest of 10,000 kinds."""
    sizes = [_size(line) for line in lines]
    size = sum(_size(part) for part in (head, tail)) + sum(sizes)
    parts = sum(1 for part in (head, tail) if part) + sum(1 for s in sizes if s)
    kept = len(lines)
    while kept and not _fits(size, parts, len(lines) - kept, limit):
        kept -= 1
        size -= sizes[kept]
        parts -= 1 if sizes[kept] else 0  # an empty line takes no line
    return kept


def _fits(size: int, parts: int, omitted: int, limit: int) -> bool:
    """Whether ``parts`` of ``size`` bytes in all, a newline between each two, and the note
    of ``omitted`` lines fit in ``limit`` bytes. The note is written only once the rest
    leaves it room, not for each count of lines tried."""
    if not omitted:
        return size + max(parts - 1, 0) <= limit
    if size + parts + 1 > limit:  # the note's newline, and a byte of it at least
        return False
    return size + parts + _size(_more(omitted)) <= limit


def _more(omitted: int) -> str:
    """The note of the lines left out; none without."""
    if not omitted:
        return ""
    more = ngettext("… %(count)d more line", "… %(count)d more lines", omitted)
    return more % {"count": omitted}


def _text(parts: list[str]) -> str:
    return "\n".join(part for part in parts if part)  # an empty part takes no line


def _size(text: str) -> int:
    return len(text.encode())


def clean(value: Any, chars: int = VALUE_CHARS) -> str:
    """A database value fit for a message line: one line, short, no markup, its controls
    written out (a reversing kind would turn the rest of the line around)."""
    text = visible(" ".join(str(value).split()), one_line=True).translate(MARKUP)
    return text if len(text) <= chars else text[: chars - 1] + "…"
