"""What start-up refuses beyond numbers and switches: mail settings no mail could be sent
with, host names no request matches; gunicorn's one line for a bad setting; the help, which
needs no production environment; the guides' production environment, which Django's deploy
check passes. The tests `make test-django6` runs on the next Django (test_settings_env.py's
are tenderops' own parsing)."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.processes import free_port, run_in_repo
from tests.test_settings_env import (  # the fixture: `check`'s database file, removed after
    CHECK_DATABASE,
    _remove_check_database,  # noqa: F401
    manage_check,
)


@pytest.mark.parametrize("sender", ["运维@example.com", "ops@example.com.", "ops"])
def test_a_sender_mail_cannot_carry_is_refused_at_start_up(sender):
    """Django 6 refuses such a sender only as it sends: every alert mail failed and was
    retried as if the server were down."""
    result = manage_check(DEFAULT_FROM_EMAIL=sender)
    assert result.returncode == 2, result.stderr
    assert "DEFAULT_FROM_EMAIL: not an e-mail address" in result.stderr


@pytest.mark.parametrize("sender", ["tenderops 值班 <ops@example.com>", "tenderops@mailhost"])
def test_a_sender_mail_can_carry_is_accepted(sender):
    """A host without a dot is one Django sends from (refused at first: the reviewer)."""
    assert manage_check(DEFAULT_FROM_EMAIL=sender).returncode == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # A line break between a name and its address passed: Django refused every mail.
        ("TENDEROPS_ALERT_EMAILS", "值班 <ops@example.com>, oncall\r\n <oncall@example.com>"),
        ("DEFAULT_FROM_EMAIL", "tenderops\r\n <tenderops@example.com>"),
        # A port or a scheme in the host: a name no resolver knows (EMAIL_PORT is apart).
        ("EMAIL_HOST", "127.0.0.1:8626"),
        ("EMAIL_HOST", "smtp.example.com:587"),
        ("EMAIL_HOST", "smtp://smtp.example.com"),
        ("EMAIL_HOST", "[2001:db8::25]"),
        # smtplib sends ASCII only: every login failed, naming a character of the password.
        ("EMAIL_HOST_PASSWORD", "pässwort-2024-never-shown"),
        ("EMAIL_HOST_USER", "运维-never-shown"),
    ],
    ids=["recipient-crlf", "sender-crlf", "host-ip-port", "host-port", "host-scheme"]
    + ["host-brackets", "password-not-ascii", "user-not-ascii"],
)
def test_mail_settings_no_mail_could_be_sent_with_are_refused_in_one_line(name, value):
    result = manage_check(**{name: value})
    assert result.returncode == 2, result.stderr
    assert name in result.stderr and "Traceback" not in result.stderr
    assert "never-shown" not in result.stderr and "smtp://" not in result.stderr


def test_a_mail_server_named_by_any_address_is_accepted():
    for host in ("smtp.example.com", "127.0.0.1", "2001:db8::25", "mailhost"):
        assert manage_check(EMAIL_HOST=host).returncode == 0, host


@pytest.mark.parametrize(
    "hosts",
    [
        "ops.example.com ops2.example.com",
        "https://ops.example.com",
        "ops.example.com:8000",
        "::1",
        "2001:db8::abc",
    ],
)
def test_allowed_hosts_that_match_no_request_are_refused(hosts):
    result = manage_check(DJANGO_ALLOWED_HOSTS=hosts)
    assert result.returncode == 2, result.stderr
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr and "is not a host name" in result.stderr


def test_allowed_host_patterns_django_knows_are_accepted():
    hosts = "ops.example.com,.example.com,127.0.0.1,[::1],*"
    assert manage_check(DJANGO_ALLOWED_HOSTS=hosts).returncode == 0


def test_gunicorn_with_a_bad_setting_says_it_in_one_line_and_halts():
    """Each worker printed a 70-line traceback as it failed to boot."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{CHECK_DATABASE}"}
    env["TENDEROPS_STUCK_TIMEOUT_MINUTES"] = "abc"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    result = run_in_repo(
        [str(gunicorn), "tenderops.wsgi", "--bind", f"127.0.0.1:{free_port()}"], env
    )
    assert result.returncode == 4, result.stderr  # gunicorn's "App failed to load."
    assert "Configuration error: TENDEROPS_STUCK_TIMEOUT_MINUTES" in result.stderr
    assert "Traceback" not in result.stderr


def manage_without_production_environment(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "DATABASE_URL")}
    env.pop("DJANGO_DEBUG", None)
    return run_in_repo([sys.executable, "manage.py", *args], env)


@pytest.mark.parametrize(
    "args",
    [("cleanup_stuck_runs", "--help"), ("prune_runs", "-h"), ("help", "cleanup_stuck_runs"), ()],
)
def test_the_help_needs_no_secret_key_and_no_database(args):
    """An operator reading the options on a machine without production's environment got
    "DJANGO_SECRET_KEY must be set" and no help."""
    result = manage_without_production_environment(*args)
    assert result.returncode == 0, result.stderr
    assert "manage.py" in result.stdout
    assert "Configuration error" not in result.stderr


def test_a_command_that_runs_still_needs_the_secret_key():
    """The stand-ins serve the help only: a command that would run refuses as before."""
    result = manage_without_production_environment("cleanup_stuck_runs", "--dry-run")
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_help_option_after_the_end_of_options_is_not_the_help():
    """After ``--`` an argument is the command's own (``dbshell -- --help`` passes it on)."""
    result = manage_without_production_environment("dbshell", "--", "--help")
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def documented_environment(guide: str) -> dict[str, str]:
    """The production environment file of an operations guide, read as systemd's
    EnvironmentFile= reads it: comment lines skipped, everything after "=" the value, double
    quotes around it removed."""
    text = (REPO / "docs" / guide).read_text()
    block = next(b for b in text.split("```sh\n")[1:] if "DJANGO_SECRET_KEY=" in b)
    lines = block.split("```")[0].splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name: re.sub(r'^"(.*)"$', r"\1", value) for name, value in pairs}


@pytest.mark.parametrize("guide", ["operations.md", "operations.zh-CN.md"])
def test_the_documented_production_environment_passes_the_deploy_check(guide):
    """With its example secrets replaced, as the guide says: pasted as they are, the public
    examples are refused (a newcomer ran production on them), each one named."""
    documented = documented_environment(guide)
    assert documented["DJANGO_DEBUG"] == "false" and "DJANGO_BEHIND_TLS_PROXY" in documented
    examples = [name for name, value in documented.items() if value.startswith("change-me")]
    assert examples == ["DJANGO_SECRET_KEY", "TENDEROPS_API_TOKEN", "TENDEROPS_METRICS_TOKEN"]
    for name in examples:
        own = {other: secrets.token_urlsafe(50) for other in examples if other != name}
        refused = manage_check(**{**documented, **own})
        assert refused.returncode == 2 and f"Configuration error: {name} is " in refused.stderr
        assert documented[name] not in refused.stderr
    own = {name: secrets.token_urlsafe(50) for name in examples}
    result = manage_check("--deploy", "--fail-level", "WARNING", **{**documented, **own})
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
