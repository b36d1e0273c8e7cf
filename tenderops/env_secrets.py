"""Secrets from the environment: Django's secret key, the API's and the metrics' bearer
tokens, the robots' signing secrets. Each refused in one line naming its variable, never
showing its value; the examples the README and the guides publish are refused as pasted."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from runs.limits import MAX_TOKEN_LENGTH, MIN_TOKEN_LENGTH
from tenderops.env import env_str

# Signs sessions and the admin's confirmation promises: shorter is guessable offline. The
# length Django's `check --deploy` asks for, so that a key start-up takes passes it too.
MIN_SECRET_KEY_LENGTH = 50
DEBUG_SECRET_KEY = "tenderops-insecure-debug-only-key"  # noqa: S105 - the demo, DJANGO_DEBUG=true


def env_secret_key(name: str, *, debug: bool) -> str:
    """Required with debug off, of MIN_SECRET_KEY_LENGTH characters at least; never shown."""
    value = env_str(name)
    length = len(value.strip())
    generate = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    if not length:
        if debug:
            return DEBUG_SECRET_KEY
        raise ImproperlyConfigured(f"{name} must be set when DJANGO_DEBUG is off ({generate})")
    if debug:
        return value
    if length < MIN_SECRET_KEY_LENGTH:
        raise ImproperlyConfigured(
            f"{name} is too short ({length} characters): use at least "
            f"{MIN_SECRET_KEY_LENGTH} ({generate})"
        )
    if is_example(value.strip()):
        raise ImproperlyConfigured(
            f"{name} is an example from the operations guide, public: {generate}"
        )
    return value


def env_token(
    name: str, other: tuple[str, str] | None = None, *, example_allowed: bool = False
) -> str:
    """A bearer token, or "" (its auth off) while unset or blank. Surrounding whitespace (a
    secrets file's newline) is dropped; what is left must be visible ASCII, which is all an
    HTTP header carries intact, of a guessable-proof length, and differ from ``other`` (name,
    value): the read-only metrics token must not open the cleanup. The README's example
    token ("change-me-…") only with ``example_allowed`` (debug: trying tenderops out)."""
    token = env_str(name).strip()
    if not token:
        return ""
    if not all("!" <= character <= "~" for character in token):
        raise ImproperlyConfigured(
            f"{name} must be visible ASCII characters only (letters, digits, punctuation): "
            "an Authorization header carries nothing else intact"
        )
    if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise ImproperlyConfigured(
            f"{name} must be {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters long, got "
            f"{len(token)}; e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if other is not None and token == other[1]:
        raise ImproperlyConfigured(f"{name} must differ from {other[0]}")
    if is_example(token) and not example_allowed:
        raise ImproperlyConfigured(
            f"{name} is an example token, public in the README or the operations guide: "
            "choose one of your own, e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    return token


# What the README's and the guides' example secrets begin with: copied into production,
# anyone may call (or, with the key, sign a session).
EXAMPLE_TOKEN = "change-me"  # noqa: S105 - a word refused, not a secret
# The examples the operations guides published before theirs began with it: public too.
FORMER_EXAMPLES = frozenset(
    {
        "replace-with-the-output-of-that-command-it-is-long-enough",
        "another-long-random-string",
        "a-third-long-random-string",
    }
)


def is_example(secret: str) -> bool:
    return EXAMPLE_TOKEN in secret.lower() or secret in FORMER_EXAMPLES


def env_signing_secret(name: str, max_length: int) -> str:
    """A robot's signing secret, or "" (unsigned) while unset or blank: visible ASCII, as the
    robots issue them (a pasted space or a full-width character would only show later, as
    every alert refused for a wrong signature)."""
    secret = env_str(name).strip()
    if secret and not all("!" <= character <= "~" for character in secret):
        raise ImproperlyConfigured(
            f"{name} must be visible ASCII characters only, as the robot shows it (no spaces); "
            "the value is not shown"
        )
    if len(secret) > max_length:
        raise ImproperlyConfigured(f"{name} must be at most {max_length} characters long")
    return secret
