"""The Chinese catalogue: every message tenderops has is translated, and the compiled
catalogue the admin loads says what the .po says. (tests/browser/test_chinese_pages.py reads
the pages themselves for English left over.)"""

import re
import subprocess
from pathlib import Path

from django.utils import translation

from tests.conftest import REPO

PO = REPO / "runs" / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
ENTRY = re.compile(
    r'^(#,[^\n]*\n)?msgid ((?:".*"\n)+)(?:msgid_plural ((?:".*"\n)+))?'
    r'((?:msgstr(?:\[\d\])? (?:".*"\n)+)+)',
    re.M,
)


ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def unquote(block: str) -> str:
    text = "".join(re.findall(r'"(.*)"', block))
    return re.sub(r"\\(.)", lambda m: ESCAPES[m.group(1)], text)


def entries() -> list[tuple[str, str | None, str, bool]]:
    source = PO.read_text(encoding="utf-8")
    found = []
    for flags, msgid, plural, msgstr in ENTRY.findall(source):
        if unquote(msgid):
            first = re.match(r'msgstr(?:\[0\])? ((?:".*"\n)+)', msgstr).group(1)
            found.append(
                (
                    unquote(msgid),
                    unquote(plural) if plural else None,
                    unquote(first),
                    "fuzzy" in flags,
                )
            )
    return found


def test_every_message_is_translated_and_none_is_a_guess():
    found = entries()
    assert len(found) > 200
    untranslated = [msgid for msgid, _plural, msgstr, _fuzzy in found if not msgstr]
    assert untranslated == []
    assert [msgid for msgid, _plural, _msgstr, fuzzy in found if fuzzy] == []


def test_the_compiled_catalogue_matches_the_po():
    with translation.override("zh-hans"):
        for msgid, plural, msgstr, _fuzzy in entries():
            shown = translation.ngettext(msgid, plural, 1) if plural else translation.gettext(msgid)
            assert shown == msgstr, msgid


def test_the_catalogue_is_complete_for_the_source(tmp_path):
    """makemessages on the source finds no message the catalogue lacks."""
    pot = tmp_path / "source.pot"
    sources = [
        str(path.relative_to(REPO))
        for pattern in ("runs/**/*.py", "tenderops/**/*.py", "templates/**/*.html")
        for path in REPO.glob(pattern)
        if "migrations" not in path.parts
    ]
    subprocess.run(
        [
            "xgettext",
            "--from-code=UTF-8",
            "-L",
            "Python",
            "-k_",
            "-kgettext",
            "-kgettext_lazy",
            "-kgettext_noop",
            "-kngettext:1,2",
            "-kngettext_lazy:1,2",
            "-o",
            str(pot),
            *[s for s in sources if s.endswith(".py")],
        ],
        cwd=REPO,
        check=True,
    )
    known = {msgid for msgid, _plural, _msgstr, _fuzzy in entries()}
    in_source = {
        unquote(block)
        for block in re.findall(r'^msgid ((?:".*"\n)+)', pot.read_text(encoding="utf-8"), re.M)
    } - {""}
    assert len(in_source) > 100  # xgettext found the routines', the API's and the admin's
    assert in_source - known == set()


def test_every_word_of_django_q2s_pages_reads_in_chinese():
    """django-q2's own catalogue lacks its help texts and some labels: tenderops' has them."""
    import django_q

    source = "".join(
        (Path(django_q.__file__).parent / name).read_text() for name in ("models.py", "admin.py")
    )
    messages = {
        "".join(re.findall(r'"([^"]*)"', call))
        for call in re.findall(r'_\(\s*((?:"[^"]*"\s*)+)\)', source)
    }
    assert len(messages) > 50  # the pattern still finds django-q2's strings
    with translation.override("zh-hans"):
        untranslated = sorted(m for m in messages if translation.gettext(m) == m)
    assert untranslated == []


def test_an_operator_chooses_the_admins_language_whatever_the_browser_asks(admin_client):
    """An English browser on a Chinese operator's desk: the switch among the user links
    keeps the choice in a cookie; a language tenderops has no words for is the browser's."""
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="language-switch"' in page and 'value="zh-hans"' in page
    chosen = admin_client.post(
        "/i18n/setlang/", {"language": "zh-hans", "next": "/admin/runs/tenderrun/"}
    )
    assert chosen.status_code == 302 and chosen["Location"] == "/admin/runs/tenderrun/"
    page = admin_client.get("/admin/runs/tenderrun/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="zh-hans"' in page.content.decode()
    # Each language named in itself: on the Chinese pages English is "English", not 英语.
    assert 'lang="en">English</option>' in page.content.decode()
    assert 'lang="zh-hans">简体中文</option>' in page.content.decode()
    assert "named in itself" not in page.content.decode()  # the template's comment stays one
    refused = admin_client.post(
        "/i18n/setlang/", {"language": "fr", "next": "https://evil.example/"}
    )
    assert refused.status_code == 302 and "evil" not in refused["Location"]
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and '<html lang="en"' in page.content.decode()
