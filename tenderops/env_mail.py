"""Mail settings from the environment: the alert recipients and the sender, checked by
Django's own test of an address, the one its mail sending relies on; the SMTP server's
host and credentials, as smtplib can use them. Each refused in one line naming its
variable: accepted, every alert mail would fail, retried as if the server were down."""

from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import EmailValidator

from tenderops.env import env_list, env_str

# "Name <address>": a name without quotes, angle brackets or control characters (Django's mail
# encodes a non-ASCII one), spaces before the bracket (a line break there passed, and Django
# refused every mail: "header values can't contain newlines").
NAMED_ADDRESS = re.compile(r'(?P<name>[^<>"\x00-\x1f\x7f]*?) *<(?P<address>[^<>\s]+)>')


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


def env_smtp_host(name: str, default: str) -> str:
    """A host name or address alone: smtplib is given EMAIL_PORT apart, so a port or a scheme
    written here made a name no resolver knows. Not echoed: ``smtp://user:pw@host`` holds a
    password."""
    host = env_str(name).strip() or default
    if re.search(r"[\s/@\[\]]", host) or (":" in host and not _ipv6(host)):
        raise ImproperlyConfigured(
            f"{name} must be a host name or address only, such as smtp.example.com or "
            "2001:db8::25 (no brackets): the port is EMAIL_PORT, TLS EMAIL_USE_TLS or "
            "EMAIL_USE_SSL (the value is not shown)"
        )
    return host


def _ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def env_smtp_credential(name: str) -> str:
    """A user name or password for SMTP AUTH, or "": ASCII, all smtplib sends (a character
    beyond made each login fail with an error that named it). Never shown."""
    value = env_str(name)
    if not value.isascii():
        raise ImproperlyConfigured(
            f"{name} must be ASCII characters only: SMTP login sends nothing else "
            "(the value is not shown)"
        )
    return value
