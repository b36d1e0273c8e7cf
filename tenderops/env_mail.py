"""Mail addresses from the environment: the alert recipients and the sender, checked by
Django's own test of an address, the one its mail sending relies on."""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import EmailValidator

from tenderops.env import env_list, env_str

# "Name <address>": a name without quotes, angle brackets or control characters (Django's mail
# encodes a non-ASCII one).
NAMED_ADDRESS = re.compile(r'(?P<name>[^<>"\x00-\x1f\x7f]*?)\s*<(?P<address>[^<>\s]+)>')


def env_emails(name: str, max_count: int) -> list[str]:
    """Comma-separated e-mail addresses, each bare or named: ``运维值班 <ops@example.com>``."""
    addresses = env_list(name, "")
    if len(addresses) > max_count:
        raise ImproperlyConfigured(f"{name} holds more than {max_count} addresses")
    for address in addresses:
        _check_address(name, address)
    return addresses


def env_email(name: str, default: str) -> str:
    """One e-mail address, bare or named. Checked here: Django 6 refuses a sender it cannot
    put on the envelope (``运维@example.com``) only as it sends, and each alert then failed
    and was retried as if the server were down. A host without a dot (``ops@mailhost``)
    is one Django sends from."""
    address = env_str(name).strip() or default
    _check_address(name, address, dotless_domain=True)
    return address


def _check_address(name: str, address: str, *, dotless_domain: bool = False) -> None:
    named = NAMED_ADDRESS.fullmatch(address)
    bare = named["address"] if named else address
    domain = bare.rpartition("@")[2]
    single_label = dotless_domain and re.fullmatch(r"[A-Za-z0-9-]{1,63}", domain)
    try:
        # Django's own test of an address, the one its mail sending relies on.
        EmailValidator(allowlist=[domain] if single_label else ["localhost"])(bare)
    except ValidationError:
        raise ImproperlyConfigured(f"{name}: not an e-mail address: {address!r}") from None
