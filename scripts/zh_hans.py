"""Fill runs/locale/zh_Hans/LC_MESSAGES/django.po from the glossary (zh_hans_glossary.py),
then compile.

Run after `python manage.py makemessages -l zh_Hans`; a msgid missing from the glossary
is reported and makes the script fail, so no English string ships untranslated.
"""

import re
import subprocess
import sys
from pathlib import Path

from zh_hans_glossary import GLOSSARY

PO = Path(__file__).resolve().parent.parent / "runs/locale/zh_Hans/LC_MESSAGES/django.po"


ENTRY = re.compile(
    r'^msgid ((?:".*"\n)+)(msgid_plural (?:".*"\n)+)?((?:msgstr(?:\[\d\])? (?:".*"\n)+)+)', re.M
)
HEADER = {
    "Project-Id-Version": "tenderops",
    "Language-Team": "tenderops",
    "Last-Translator": "tenderops",
    "Language": "zh_Hans",
}


def unquote(block: str) -> str:
    return (
        "".join(re.findall(r'"(.*)"', block))
        .encode()
        .decode("unicode_escape")
        .encode("latin-1")
        .decode("utf-8")
    )


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fill(po: str) -> tuple[str, list[str]]:
    missing = []

    def replace(match: re.Match) -> str:
        msgid = unquote(match.group(1))
        if not msgid:
            return match.group(0)
        if msgid not in GLOSSARY:
            missing.append(msgid)
            return match.group(0)
        key = "msgstr[0]" if match.group(2) else "msgstr"
        return f"msgid {match.group(1)}{match.group(2) or ''}{key} {quote(GLOSSARY[msgid])}\n"

    return ENTRY.sub(replace, po), missing


def unfuzzy(po: str) -> str:
    """Once every msgstr comes from the glossary, msgmerge's fuzzy guesses (and the previous
    msgids it kept beside them) are void; msgfmt would leave a fuzzy entry out of the .mo."""

    def without_fuzzy(match: re.Match) -> str:
        kept = [flag for flag in match.group(1).split(",") if flag.strip() not in {"", "fuzzy"}]
        return f"#,{','.join(kept)}\n" if kept else ""

    po = re.sub(r"^#\| .*\n", "", po, flags=re.M)
    return re.sub(r"^#,(.*)\n", without_fuzzy, po, flags=re.M)


def main() -> None:
    text, missing = fill(PO.read_text(encoding="utf-8"))
    text = text.replace("#, fuzzy\n", "", 1)
    if not missing:
        text = unfuzzy(text)
    for field, value in HEADER.items():
        text = re.sub(rf'"{field}: [^"]*\\n"', f'"{field}: {value}\\\\n"', text, count=1)
    PO.write_text(text, encoding="utf-8")
    if missing:
        print("untranslated:", *missing, sep="\n  ")
        sys.exit(1)
    subprocess.run(
        ["msgfmt", "--check-format", "-o", str(PO.with_suffix(".mo")), str(PO)], check=True
    )


if __name__ == "__main__":
    main()
