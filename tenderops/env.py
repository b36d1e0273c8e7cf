"""Parsing of environment variables into typed settings, with errors that name the variable.

Numbers and switches are checked by ``runs.limits``, the very checks the routines apply, so a
value that passes start-up is one the routines accept.
"""

import os
import re
from datetime import time
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from runs.limits import (
    MAX_REASON_LENGTH,
    InvalidParameter,
    Limit,
    parse_switch,
)
from runs.shown_text import has_controls

# Every variable a setting was read from, for the check that warns of the others
# (runs/checks.py, W005: a misspelt name is otherwise ignored without a word).
READ_VARIABLES: set[str] = set()


def _read(name: str, default: str = "") -> str:
    READ_VARIABLES.add(name)
    return os.environ.get(name, default)


# The variables tenderops reads: these prefixes, and a few names of their own.
READ_PREFIXES = ("TENDEROPS_", "DJANGO_", "EMAIL_")
READ_NAMES = frozenset({"DATABASE_URL", "REDIS_URL", "DEFAULT_FROM_EMAIL"})
# A byte-order mark and the zero-width characters editors leave at the start of a file.
INVISIBLE_IN_NAMES = "\ufeff\u200b\u200c\u200d\u2060"


def check_utf8_environment() -> None:
    """Every variable tenderops reads must be UTF-8 text. An env file saved in another
    encoding (GBK, say) reaches Python as undecodable bytes, which passed every check and
    then failed each statement that wrote the text: the monitor's error text, every tick.
    A name that is one of ours behind invisible characters is refused too."""
    for name, value in os.environ.items():
        if not _read_by_tenderops(name):
            _refuse_a_disguised_name(name)
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ImproperlyConfigured(
                f"{name} is not UTF-8 text (saved in another encoding?); the value is not shown"
            ) from None


def _read_by_tenderops(name: str) -> bool:
    return name.startswith(READ_PREFIXES) or name in READ_NAMES


def _refuse_a_disguised_name(name: str) -> None:
    """An env file saved as "UTF-8 with BOM" names its first variable "\ufeffDATABASE_URL":
    tenderops would not see it and would quietly fall back to the embedded SQLite database."""
    visible = name.strip().lstrip(INVISIBLE_IN_NAMES).strip()
    if visible != name and _read_by_tenderops(visible):
        raise ImproperlyConfigured(
            f"the environment variable {visible} has invisible characters around its name "
            "(a byte-order mark from an env file saved as 'UTF-8 with BOM'?), so it would be "
            "ignored; save the file as plain UTF-8"
        )


def env_str(name: str, default: str = "") -> str:
    return _read(name, default)


def env_text(name: str, default: str, max_length: int = MAX_REASON_LENGTH) -> str:
    """Text tenderops writes into runs, which the backend's users read as it is: blank means
    the default; control characters (escape, bidirectional, invisible) are refused, as the
    admin refuses them in an operator's reason, and so is text longer than a reason may be
    (the admin's reason field starts with it)."""
    value = (_raw(name) or "").strip()
    if has_controls(value):
        raise ImproperlyConfigured(
            f"{name} must not contain control characters (escape, bidirectional or invisible "
            "ones): the backend's users see it as it is written"
        )
    if len(value) > max_length:
        raise ImproperlyConfigured(
            f"{name} must be at most {max_length} characters (it has {len(value)})"
        )
    return value or default


def env_database(name: str, default: str) -> dict:
    """The database a ``postgres://`` or ``sqlite://`` address names (dj-database-url);
    PostgreSQL in production, SQLite for the demo. Never echoed: it may hold a password."""
    value = (_raw(name) or default).strip()
    try:
        config = dj_database_url.parse(value, conn_max_age=0)
        urlsplit(value).port  # noqa: B018 - a port that is not a number, or past 65535, raises
    except Exception:  # dj-database-url's errors vary with what it could not read
        config = {}
    # "sqlite://" is an in-memory database: empty at every start, it holds no tender runs.
    if config.get("ENGINE") not in DATABASE_ENGINES or config.get("NAME") in (None, "", ":memory:"):
        raise ImproperlyConfigured(
            f"{name} must be a postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH address "
            "(special characters in the password percent-encoded; the value is not shown: it "
            "may hold a password)"
        )
    return config


DATABASE_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}


def env_redis_url(name: str) -> str:
    """A redis://, rediss:// or unix:// address, or empty (django-q2 then uses the database)."""
    value = (_raw(name) or "").strip()
    if not value:
        return ""
    parts = _split(value)
    needs_host = parts is not None and parts.scheme in {"redis", "rediss"}
    if (
        parts is None
        or not (needs_host and parts.hostname or parts.scheme == "unix" and parts.path)
        or not _valid_port(parts)
    ):
        raise ImproperlyConfigured(
            f"{name} must be a redis://HOST:PORT/DB, rediss://… or unix://PATH address (the "
            "value is not shown: it may hold a password)"
        )
    return value


CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def env_cluster_name(name: str, default: str) -> str:
    """django-q2's cluster name, which names its Redis queue: deployments that share one
    Redis database need names of their own, or each takes the other's monitor ticks."""
    value = (_raw(name) or default).strip()
    if not CLUSTER_NAME.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} must be 1 to 64 ASCII letters, digits, '.', '_' or '-' (starting with a "
            f"letter or digit), not {value[:80]!r}"
        )
    return value


def _raw(name: str) -> str | None:
    raw = _read(name)
    return raw if raw.strip() else None


def env_bool(name: str, default: bool = False) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return parse_switch(raw, name)
    except InvalidParameter as error:
        raise ImproperlyConfigured(str(error)) from None


def env_int(name: str, default: int, limit: Limit) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        return limit.parse(raw, name)
    except InvalidParameter as error:
        raise ImproperlyConfigured(str(error)) from None


def env_optional_int(name: str, limit: Limit) -> int | None:
    """A whole number within ``limit``, or None while the variable is unset or empty."""
    return None if _raw(name) is None else env_int(name, 0, limit)


def env_choice(name: str, default: str, choices: list[str] | tuple[str, ...]) -> str:
    """One of ``choices`` (any case)."""
    value = (_raw(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_kind_timeouts(name: str, limit: Limit) -> dict[str, int]:
    """Parse ``generate_docx=30,review=20`` into ``{"generate_docx": 30, "review": 20}``."""
    timeouts: dict[str, int] = {}
    for item in _read(name, "").split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, minutes = item.partition("=")
        kind = kind.strip()
        if not sep or not kind:
            raise ImproperlyConfigured(f"{name}: expected kind=minutes, got {item!r}")
        if kind in timeouts:
            raise ImproperlyConfigured(f"{name}: {kind!r} is given twice")
        try:
            timeouts[kind] = limit.parse(minutes, f"{name} ({kind})")
        except InvalidParameter as error:
            raise ImproperlyConfigured(str(error)) from None
    return timeouts


def env_list(name: str, default: str) -> list[str]:
    """Comma-separated; the default while unset or blank, as every other variable."""
    return [part.strip() for part in (_raw(name) or default).split(",") if part.strip()]


def env_hosts(name: str, default: str) -> list[str]:
    """Host names for ALLOWED_HOSTS, comma-separated. A space-separated list, an address
    (``https://...``) or a port passed as one name that matches no request: every page was a
    bare 400 that no log line explained."""
    hosts = env_list(name, default)
    for host in hosts:
        bracketed = host.startswith("[") and host.endswith("]")  # an IPv6 address: [::1]
        if re.search(r"\s|/", host) or (":" in host and not bracketed):
            raise ImproperlyConfigured(
                f"{name}: {host!r} is not a host name; list names only, comma-separated, "
                "without scheme or port, IPv6 addresses in brackets (ops.example.com,[::1])"
            )
    return hosts


def env_time_zone(name: str, default: str) -> str:
    """An IANA time zone name, such as ``Asia/Shanghai``."""
    value = (_raw(name) or default).strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone name such as Asia/Shanghai, got {value!r}"
        ) from None
    return value


def env_time_of_day(name: str, default: str) -> time | None:
    """``HH:MM`` (24-hour clock), or ``off`` for none; ``HH:MM:00`` as cron and SQL write it."""
    value = (_raw(name) or default).strip()
    if value.lower() == "off":
        return None
    hours, sep, rest = value.partition(":")
    minutes, _colon, seconds = rest.partition(":")
    # ASCII digits only: isdigit() also takes "²" (which int() refuses) and other scripts'.
    well_formed = sep and _ascii_digits(hours) and _ascii_digits(minutes) and len(minutes) == 2
    if well_formed and int(hours) < 24 and int(minutes) < 60 and seconds in ("", "00"):
        return time(int(hours), int(minutes))
    raise ImproperlyConfigured(f"{name} must be HH:MM (24-hour clock) or off, got {value!r}")


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def env_url(name: str, max_length: int) -> str:
    """An http(s) address with a host, or empty. Never echoed back in an error: webhook
    addresses carry their keys."""
    value = (_raw(name) or "").strip()
    if not value:
        return ""
    parts = _split(value)
    if (
        parts is None
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or len(value) > max_length
        or any(character.isspace() or ord(character) < 32 for character in value)
        or not _valid_port(parts)
    ):
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// address of at most {max_length} characters "
            "with a port from 1 to 65535 if any (the value is not shown: it may hold a key)"
        )
    if parts.username is not None or parts.password is not None:
        # urllib sends no credentials from an address: every request would fail.
        raise ImproperlyConfigured(
            f"{name} must not hold a user name or password before its host (the value is not "
            "shown: it may hold a key)"
        )
    return value


def env_base_url(name: str, max_length: int) -> str:
    """An http(s) address that links are built on (``<address>/admin/...``): no query or
    fragment, no trailing slash."""
    value = env_url(name, max_length)
    parts = urlsplit(value)
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ImproperlyConfigured(
            f"{name} must be the address the admin is reached at, such as "
            "https://ops.example.com, without ? or #: links are built on it"
        )
    return value.rstrip("/")


def _split(value: str) -> SplitResult | None:
    """An address's parts; None for one urlsplit refuses (an unclosed IPv6 bracket: start-up
    ended in a traceback, "ValueError: Invalid IPv6 URL")."""
    try:
        return urlsplit(value)
    except ValueError:
        return None


def _valid_port(parts: SplitResult) -> bool:
    try:
        port = parts.port  # a port that is not a number, or past 65535, raises
    except ValueError:
        return False
    return port is None or port > 0
