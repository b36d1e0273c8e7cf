"""Every TENDEROPS_* number is checked at start-up by the routines' own limits (runs/limits.py)."""

import os
import subprocess
import sys

import pytest

from runs import limits
from tenderops.env import env_int
from tests.conftest import REPO

INTEGER_VARIABLES = {
    "TENDEROPS_STUCK_TIMEOUT_MINUTES": limits.TIMEOUT_MINUTES,
    "TENDEROPS_RETENTION_FAILED_DAYS": limits.RETENTION_DAYS,
    "TENDEROPS_RETENTION_SUCCESS_DAYS": limits.RETENTION_DAYS,
    "TENDEROPS_PRUNE_BATCH_SIZE": limits.PRUNE_BATCH_SIZE,
    "TENDEROPS_MONITOR_INTERVAL_MINUTES": limits.MONITOR_INTERVAL_MINUTES,
    "TENDEROPS_STATS_MAX_AGE_SECONDS": limits.STATS_MAX_AGE_SECONDS,
    "TENDEROPS_TASK_TIMEOUT_SECONDS": limits.TASK_TIMEOUT_SECONDS,
    "TENDEROPS_Q_WORKERS": limits.CLUSTER_WORKERS,
}


def manage_check(**environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **environment}
    env.pop("DATABASE_URL", None)  # `check` needs no database; the default one suffices
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def out_of_range_cases():
    for name, limit in INTEGER_VARIABLES.items():
        yield pytest.param(name, str(limit.minimum - 1), id=f"{name}-below")
        yield pytest.param(name, str(limit.maximum + 1), id=f"{name}-above")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUTS", "review=0", id="per-kind-below")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUTS", "review=100000000000", id="per-kind-above")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUT_MINUTES", "ten", id="not-a-number")
    yield pytest.param("DJANGO_DEBUG", "maybe", id="not-a-switch")


@pytest.mark.parametrize(("name", "value"), list(out_of_range_cases()))
def test_a_bad_value_stops_start_up_naming_the_variable(name, value):
    result = manage_check(**{name: value})
    assert result.returncode == 2
    assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_a_good_environment_passes_the_check():
    result = manage_check(
        TENDEROPS_RETENTION_FAILED_DAYS=str(limits.RETENTION_DAYS.maximum),
        TENDEROPS_MONITOR_INTERVAL_MINUTES=str(limits.MONITOR_INTERVAL_MINUTES.maximum),
        TENDEROPS_STUCK_TIMEOUTS="generate_docx=30, review=20",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", INTEGER_VARIABLES)
def test_the_bounds_themselves_are_accepted(name, monkeypatch):
    limit = INTEGER_VARIABLES[name]
    for value in (limit.minimum, limit.maximum):
        monkeypatch.setenv(name, f" {value} ")
        assert env_int(name, 7, limit) == value
    monkeypatch.setenv(name, "")
    assert env_int(name, 7, limit) == 7


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k" * 20 + "production-key-for-the-deploy-check-0123456789",
    "DJANGO_ALLOWED_HOSTS": "tenderops.example.com",
    "DJANGO_SECURE_COOKIES": "true",
    "DJANGO_SSL_REDIRECT": "true",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_HSTS_PRELOAD": "true",
    "DJANGO_BEHIND_TLS_PROXY": "true",
}


def test_without_a_secret_key_and_debug_off_start_up_is_refused():
    result = manage_check(DJANGO_SECRET_KEY="", DJANGO_DEBUG="false")
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    assert manage_check(DJANGO_SECRET_KEY="", DJANGO_DEBUG="true").returncode == 0


def test_the_documented_production_environment_passes_the_deploy_check():
    env = {**os.environ, **PRODUCTION}
    for test_only in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):  # the browser tests' own
        env.pop(test_only, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    documented = (REPO / "docs" / "operations.md").read_text()
    assert all(name in documented for name in PRODUCTION)


@pytest.mark.parametrize("name", ["TENDEROPS_TIME_ZONE", "TENDEROPS_RETENTION_TIME"])
def test_time_settings_are_checked(name):
    result = manage_check(**{name: "Mars/Olympus" if name.endswith("ZONE") else "25:00"})
    assert result.returncode == 2 and name in result.stderr
