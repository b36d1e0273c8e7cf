"""Parsing of environment variables into typed settings, with errors that name the variable."""

import os

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return parse_positive_int(raw, name)


def parse_positive_int(raw: str, name: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1, got {value}")
    return value


def parse_kind_timeouts(raw: str, name: str = "TENDEROPS_STUCK_TIMEOUTS") -> dict[str, int]:
    """Parse ``generate_docx=30,review=20`` into ``{"generate_docx": 30, "review": 20}``."""
    timeouts: dict[str, int] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, minutes = item.partition("=")
        kind = kind.strip()
        if not sep or not kind:
            raise ImproperlyConfigured(f"{name}: expected kind=minutes, got {item!r}")
        timeouts[kind] = parse_positive_int(minutes, f"{name} ({kind})")
    return timeouts


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]
