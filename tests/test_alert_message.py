"""Fitting a message to a channel's size: the lines that fit, the note of those left out,
each line measured once however many there are."""

import pytest
from django.utils import translation
from django.utils.translation import ngettext
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runs.alerting import message
from runs.alerting.message import fit


def fit_one_line_at_a_time(head: str, lines: list[str], tail: str, limit: int) -> str:
    """What fit() did before it measured each line once: the same text, in quadratic time."""
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


words = st.text(st.sampled_from(["a", "é", "运", "🚨", " ", "-"]), max_size=12)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    head=words,
    lines=st.lists(words, max_size=15),
    tail=words,
    limit=st.integers(0, 120),
    language=st.sampled_from(["en", "zh-hans"]),
)
def test_the_lines_kept_are_those_dropping_one_at_a_time_kept(head, lines, tail, limit, language):
    """Empty lines (which take no line), characters of several bytes, a note longer than
    the lines it replaces, nothing fitting at all."""
    with translation.override(language):
        assert fit(head, lines, tail, limit) == fit_one_line_at_a_time(head, lines, tail, limit)


class Counted:
    """A function of runs.alerting.message that counts its calls and the characters it was
    given."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = self.characters = 0
        self.function = getattr(message, name)
        monkeypatch.setattr(message, name, self)

    def __call__(self, *args):
        self.calls += 1
        self.characters += sum(len(part) for arg in args for part in _parts(arg))
        return self.function(*args)


def _parts(arg) -> list:
    return arg if isinstance(arg, list) else [arg] if isinstance(arg, str) else []


HEAD, TAIL = "### tenderops", "[Open these runs](https://ops.example.com)"


def digest_lines(count: int) -> list[str]:
    return [f"k{n:05d}_" + "x" * 190 for n in range(count)]


def test_the_note_of_lines_left_out_is_written_for_the_last_counts_tried_only(monkeypatch):
    """A digest of 10,000 kinds took 13 to 27 s to fit to each robot (and its admin page
    21 s, past gunicorn's 30 s at 15,000): each line left out wrote the note again and joined
    and encoded the rest again."""
    notes = Counted(monkeypatch, "ngettext")
    with translation.override("en"):
        text = fit(HEAD, digest_lines(2_000), TAIL, 4_096)
    assert text.endswith(f"… 1980 more lines\n{TAIL}") and len(text.encode()) <= 4_096
    assert notes.calls <= 2


def test_a_message_of_many_lines_is_joined_once_and_each_line_measured_once(monkeypatch):
    lines = digest_lines(10_000)
    joined, measured = Counted(monkeypatch, "_text"), Counted(monkeypatch, "_size")
    with translation.override("en"):
        text = fit(HEAD, lines, TAIL, 4_096)
    assert text.endswith(f"… 9980 more lines\n{TAIL}") and len(text.encode()) <= 4_096
    assert joined.calls == 1
    assert measured.calls <= len(lines) + 5
    assert measured.characters <= sum(map(len, lines)) + 100
