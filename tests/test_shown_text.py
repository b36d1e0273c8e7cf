"""The backend's text as tenderops shows it: controls written out, never obeyed."""

from runs.shown_text import shortened, visible


def test_controls_are_written_out_and_lines_kept_where_asked():
    text = "\x1b]0;PWNED\x07\x1b[1;41mEVIL\u202egnp.exe\x9b2J\nnext\tline"
    shown = visible(text)
    assert shown == (
        "<U+001B>]0;PWNED<U+0007><U+001B>[1;41mEVIL<U+202E>gnp.exe<U+009B>2J\nnext\tline"
    )
    assert visible(text, one_line=True).endswith("2J<U+000A>next<U+0009>line")


def test_plain_text_is_left_as_it_is():
    assert visible("提取中... review 🔥 <b>") == "提取中... review 🔥 <b>"
    family = "👨\u200d👩\u200d👧"  # the joiners of an emoji stay
    assert visible(family) == family


def test_invisible_characters_that_make_another_kind_are_written_out():
    assert visible("\ufeffreview") == "<U+FEFF>review"
    assert visible("re\u200bview\u200e\u2060") == "re<U+200B>view<U+200E><U+2060>"


def test_shortened_cuts_after_writing_out():
    assert shortened(None, 5) == "" and shortened("", 5) == ""
    assert shortened("abcdef", 6) == "abcdef"
    assert shortened("abcdefg", 6) == "abcde…"
    # Never half a written-out character: "<U+00…" reads as neither.
    assert shortened("ab\x1bxyz", 8) == "ab…"
    assert shortened("ab\x1bxyz", 12) == "ab<U+001B>x…"


def test_the_admin_filter_shows_a_dash_for_blanks():
    from runs.templatetags.run_display import shown

    assert shown(None) == shown("") == shown("   ") == "–"
    assert shown("rev\u202eiew") == "rev<U+202E>iew"
    assert shown("k" * 50) == "k" * 39 + "…" and shown("k" * 50, 10) == "k" * 9 + "…"


def test_a_label_takes_its_languages_colon():
    from django.utils import translation

    from runs.shown_text import labelled

    assert labelled("first seen", "08:00") == "first seen: 08:00"
    with translation.override("zh-hans"):
        assert labelled("首次观察到", "08:00") == "首次观察到：08:00"


def test_a_kind_of_other_spaces_is_not_shown_as_the_blank_one():
    """The database trims ASCII whitespace only: a kind of U+3000 is a kind of its own (its
    own column on the stats page), and both read "–" (the attacker)."""
    from runs.templatetags.run_display import shown

    assert [shown(value) for value in (None, "", " \t")] == ["–", "–", "–"]
    assert shown("\u3000") == "<U+3000>"
    assert shown("\u3000review\u3000") == "\u3000review\u3000"  # words read as written
