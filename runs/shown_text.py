"""The backend's free text where it would be obeyed instead of read, written out instead.

Control characters are a terminal's escape sequences (a run's kind that retitles the
operator's terminal) and a page's invisible boxes; bidirectional controls turn what follows
them around ("gnp.exe" shown as "exe.png"). Each is shown as its code point, ``<U+202E>``.
The admin, the command line and /metrics all show the backend's text through here.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from runs.vocabulary import WHITESPACE

_WRITTEN_OUT = (
    *range(0x00, 0x20),  # C0 controls: ESC, BEL, backspace...
    0x7F,
    *range(0x80, 0xA0),  # C1 controls: 0x9B starts an escape sequence on some terminals
    *range(0x202A, 0x202F),  # embeddings and overrides
    *range(0x2066, 0x206A),  # isolates
    0x061C,  # Arabic letter mark
    0x200E,  # left-to-right mark
    0x200F,  # right-to-left mark
    # Invisible: "\ufeffreview" reads as "review" and is another kind. The joiners (U+200C,
    # U+200D) are left as they are: emoji and some scripts need them.
    0x200B,  # zero-width space
    0x2060,  # word joiner
    0xFEFF,  # byte order mark, zero-width no-break space
)
_ON_ONE_LINE = {code: f"<U+{code:04X}>" for code in _WRITTEN_OUT}
_WITH_LINES = {code: shown for code, shown in _ON_ONE_LINE.items() if chr(code) not in "\t\n\r"}


def visible(text: str, *, one_line: bool = False) -> str:
    """``text`` with its controls written out; tabs and line breaks kept unless ``one_line``."""
    return text.translate(_ON_ONE_LINE if one_line else _WITH_LINES)


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character ``visible`` would write out (tabs and line breaks
    aside): text tenderops writes where others show it as it is must not."""
    return text != visible(text)


def shown(value: str | None, limit: int = 40) -> str:
    """The backend's text (a kind, a message) cut to ``limit`` characters, its control and
    bidirectional characters written out; "–" for none or blanks (a chart's label as well
    as a table's: the durations chart drew a blank kind's bar with no label)."""
    if not value or not value.strip(WHITESPACE):  # blank as the database trims it
        return "–"
    if not value.strip():  # other spaces only (U+3000): a kind apart, not the blank one
        value = "".join(f"<U+{ord(space):04X}>" for space in value)
    return shortened(value, int(limit))


def shortened(text: str | None, limit: int, *, one_line: bool = False) -> str:
    """``visible(text)`` cut to ``limit`` characters, the last one "…" when cut."""
    if not text:
        return ""
    text = visible(text, one_line=one_line)
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    marker = head.rfind("<U+")
    if marker != -1 and ">" not in head[marker:]:
        head = head[:marker]  # never half a written-out character
    return head + "…"


def labelled(label: str, value: object) -> str:
    """Label and value joined by the active language's colon (full width in Chinese)."""
    return _("%(label)s: %(value)s") % {"label": label, "value": value}
