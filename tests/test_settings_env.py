"""Every TENDEROPS_* number is checked at start-up by the routines' own limits (runs/limits.py)."""

import os
import subprocess
import sys
import tempfile
from datetime import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from runs import limits
from tenderops.env import env_int
from tenderops.env_secrets import env_token
from tests.processes import run_in_repo

INTEGER_VARIABLES = {
    "TENDEROPS_STUCK_TIMEOUT_MINUTES": limits.TIMEOUT_MINUTES,
    "TENDEROPS_RETENTION_FAILED_DAYS": limits.RETENTION_DAYS,
    "TENDEROPS_RETENTION_SUCCESS_DAYS": limits.RETENTION_DAYS,
    "TENDEROPS_RETENTION_HISTORY_DAYS": limits.HISTORY_RETENTION_DAYS,
    "TENDEROPS_PRUNE_BATCH_SIZE": limits.PRUNE_BATCH_SIZE,
    "TENDEROPS_MONITOR_INTERVAL_MINUTES": limits.MONITOR_INTERVAL_MINUTES,
    "TENDEROPS_STATS_MAX_AGE_SECONDS": limits.STATS_MAX_AGE_SECONDS,
    "TENDEROPS_TASK_TIMEOUT_SECONDS": limits.TASK_TIMEOUT_SECONDS,
    "TENDEROPS_Q_WORKERS": limits.CLUSTER_WORKERS,
    "TENDEROPS_MAX_RUN_MINUTES": limits.TIMEOUT_MINUTES,
    "TENDEROPS_PENDING_ALERT_MINUTES": limits.TIMEOUT_MINUTES,
    "TENDEROPS_FAIL_PENDING_AFTER_MINUTES": limits.TIMEOUT_MINUTES,
    "TENDEROPS_ALERT_COOLDOWN_MINUTES": limits.ALERT_COOLDOWN_MINUTES,
    "TENDEROPS_ALERT_TIMEOUT_SECONDS": limits.ALERT_TIMEOUT_SECONDS,
    "TENDEROPS_ALERT_MAX_ATTEMPTS": limits.ALERT_MAX_ATTEMPTS,
    "TENDEROPS_ALERT_RETRY_SECONDS": limits.ALERT_RETRY_SECONDS,
    "TENDEROPS_SPIKE_MIN_FAILURES": limits.SPIKE_MIN_FAILURES,
    "EMAIL_PORT": limits.SMTP_PORT,
}


CHECK_DATABASE = Path(tempfile.gettempdir()) / f"tenderops-check-{os.getpid()}.sqlite3"


@pytest.fixture(autouse=True, scope="module")
def _remove_check_database():
    yield
    CHECK_DATABASE.unlink(missing_ok=True)


def manage_check(*options: str, **environment: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # Production settings need an address, and Django 6.1's `check` opens it (a model check
    # asks the database what it supports): a file of the checks' own. The other variable is
    # the browser tests'.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["DATABASE_URL"] = f"sqlite:///{CHECK_DATABASE}"
    env.update(environment)
    return run_in_repo([sys.executable, "manage.py", "check", *options], env)


def out_of_range_cases():
    for name, limit in INTEGER_VARIABLES.items():
        yield pytest.param(name, str(limit.minimum - 1), id=f"{name}-below")
        yield pytest.param(name, str(limit.maximum + 1), id=f"{name}-above")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUTS", "review=0", id="per-kind-below")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUTS", "review=100000000000", id="per-kind-above")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUT_MINUTES", "ten", id="not-a-number")
    yield pytest.param("DJANGO_DEBUG", "maybe", id="not-a-switch")
    yield pytest.param("TENDEROPS_STUCK_RULE", "sometimes", id="unknown-rule")
    yield pytest.param("TENDEROPS_MONITOR_MODE", "shout", id="unknown-mode")
    yield pytest.param("TENDEROPS_ALERT_LANGUAGE", "fr", id="alert-language")
    yield pytest.param("TENDEROPS_ALERT_EMAILS", "ops@example.com, nobody", id="alert-emails")
    for address in ("bad@@x.y", "a@b.c>", "a@[1.2.3.4].x", "Ops <bad@@x.y>", "O <a@b.c> x"):
        yield pytest.param("TENDEROPS_ALERT_EMAILS", f"ops@example.com,{address}", id=address)
    yield pytest.param("EMAIL_USE_SSL", "maybe", id="email-ssl-switch")
    for name in (
        "TENDEROPS_ALERT_WEBHOOK_URL",
        "TENDEROPS_WECOM_WEBHOOK_URL",
        "TENDEROPS_DINGTALK_WEBHOOK_URL",
        "TENDEROPS_FEISHU_WEBHOOK_URL",
        "TENDEROPS_PUBLIC_URL",
    ):
        yield pytest.param(name, "ftp://example.com/hook?key=k", id=f"{name}-scheme")
        yield pytest.param(name, "https://" + "a" * 2_100, id=f"{name}-too-long")
        for port in ("abc", "0", "99999"):
            yield pytest.param(name, f"http://127.0.0.1:{port}/hook?k=1", id=f"{name}-port-{port}")
        yield pytest.param(name, "http://user:pw@example.com/hook", id=f"{name}-credentials")
        # An unclosed IPv6 bracket: urlsplit's ValueError ended start-up in a traceback.
        unclosed = "https://[qyapi.weixin.qq.com/cgi-bin/webhook/send?key=never-shown-8e21"
        yield pytest.param(name, unclosed, id=f"{name}-unclosed-bracket")
    yield pytest.param("TENDEROPS_PUBLIC_URL", "https://ops.example.com/#x", id="base-fragment")
    yield pytest.param("TENDEROPS_PUBLIC_URL", "https://ops.example.com/?a=1", id="base-query")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUTS", "review=20,review=30", id="per-kind-twice")
    for name in ("TENDEROPS_STUCK_MESSAGE", "TENDEROPS_MARK_FAILED_ERROR"):
        yield pytest.param(name, "超时\x1b[2J", id=f"{name}-escape")
        yield pytest.param(name, "超时\u202e败失", id=f"{name}-bidi")
    # An env file saved in GBK: bytes that are not UTF-8 reach Python as lone surrogates.
    gbk = "任务超时".encode("gbk").decode("utf-8", "surrogateescape")
    for name in ("TENDEROPS_STUCK_MESSAGE", "TENDEROPS_STUCK_ERROR", "TENDEROPS_DINGTALK_SECRET"):
        yield pytest.param(name, gbk, id=f"{name}-gbk")
    yield pytest.param("TENDEROPS_STUCK_TIMEOUTS", f"{gbk}=10", id="per-kind-gbk")
    for url in (
        "postgres//127.0.0.1/db",
        "postgres://u:pw@127.0.0.1:99999/db",
        "postgres://u:pw@127.0.0.1:abc/db",
        "postgresql+psycopg://u@127.0.0.1/db",
        "mysql://u@127.0.0.1/db",
        "nonsense",
    ):
        yield pytest.param("DATABASE_URL", url, id=f"database-{url}")
    for url in ("foo", "redis://127.0.0.1:99999/0", "http://127.0.0.1:6379", "redis://"):
        yield pytest.param("REDIS_URL", url, id=f"redis-{url}")
    yield pytest.param("REDIS_URL", "redis://:pw-never-shown@[::1:6379/0", id="redis-bracket")
    for name in ("two words", "queue/key", "队列", "-leading-dash", "n" * 65):
        yield pytest.param("TENDEROPS_CLUSTER_NAME", name, id=f"cluster-{name[:12]}")
    for name in ("TENDEROPS_API_TOKEN", "TENDEROPS_METRICS_TOKEN"):
        yield pytest.param(name, "x", id=f"{name}-short")
        yield pytest.param(name, "tökén-long-enough-to-pass", id=f"{name}-not-ascii")
        yield pytest.param(name, "two words long enough to pass", id=f"{name}-space")
        yield pytest.param(name, "t" * 1_001, id=f"{name}-too-long")
        # The README's example, copied into production: anyone could call.
        yield pytest.param(name, "change-me-to-a-long-random-string", id=f"{name}-example")
        # The guides' former examples, public in their history.
        for former in ("another-long-random-string", "a-third-long-random-string"):
            yield pytest.param(name, former, id=f"{name}-{former[:9]}")
    former_key = "replace-with-the-output-of-that-command-it-is-long-enough"
    yield pytest.param("DJANGO_SECRET_KEY", former_key, id="secret-key-former-example")
    for name in ("TENDEROPS_DINGTALK_SECRET", "TENDEROPS_FEISHU_SECRET"):
        yield pytest.param(name, "SEC abc", id=f"{name}-space")
        yield pytest.param(name, "SEC１２３", id=f"{name}-full-width")
        yield pytest.param(name, "s" * 1_001, id=f"{name}-too-long")


@pytest.mark.parametrize(("name", "value"), list(out_of_range_cases()))
def test_a_bad_value_stops_start_up_naming_the_variable(name, value):
    result = manage_check(**{name: value})
    assert result.returncode == 2
    assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert "never-shown" not in result.stderr  # a key or password in the value


def test_the_metrics_token_must_not_open_the_cleanup():
    same = "the-same-token-for-both"
    result = manage_check(TENDEROPS_API_TOKEN=same, TENDEROPS_METRICS_TOKEN=same)
    assert result.returncode == 2 and "TENDEROPS_METRICS_TOKEN must differ" in result.stderr
    assert same not in result.stderr


def test_the_readmes_example_token_is_for_trying_tenderops_out_only(monkeypatch):
    monkeypatch.setenv("TENDEROPS_API_TOKEN", "Change-Me-to-a-long-random-string")
    with pytest.raises(ImproperlyConfigured, match="an example token"):
        env_token("TENDEROPS_API_TOKEN")
    token = env_token("TENDEROPS_API_TOKEN", example_allowed=True)  # debug: README's try-it
    assert token == "Change-Me-to-a-long-random-string"


def test_a_token_read_from_a_secrets_file_loses_its_newline(monkeypatch):
    """Sent tokens are stripped: an expected one with its file's newline matched none."""
    monkeypatch.setenv("TENDEROPS_API_TOKEN", "token-from-a-secrets-file\n")
    assert env_token("TENDEROPS_API_TOKEN") == "token-from-a-secrets-file"
    monkeypatch.setenv("TENDEROPS_API_TOKEN", "  ")
    assert env_token("TENDEROPS_API_TOKEN") == ""


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


def test_without_a_secret_key_and_debug_off_start_up_is_refused():
    result = manage_check(DJANGO_SECRET_KEY="", DJANGO_DEBUG="false")
    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    assert manage_check(DJANGO_SECRET_KEY="", DJANGO_DEBUG="true").returncode == 0


@pytest.mark.parametrize(
    ("environment", "said"),
    [
        ({"DJANGO_SECRET_KEY": "   "}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_SECRET_KEY": "x" * 49}, "DJANGO_SECRET_KEY is too short (49 characters)"),
        ({"DJANGO_ALLOWED_HOSTS": " , "}, "DJANGO_ALLOWED_HOSTS names no host"),
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL must be a postgres://"),
        ({"TENDEROPS_MARK_FAILED_MESSAGE": "停" * 2001}, "at most 2000 characters (it has 2001)"),
    ],
)
def test_production_settings_that_would_fail_later_are_refused_at_start_up(environment, said):
    # A blank key signs sessions and confirmations with nothing; "," refuses every request;
    # "sqlite://" is an empty database in memory; a default reason the form always refuses.
    result = manage_check(**{"DJANGO_DEBUG": "false", **environment})
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert "x" * 49 not in result.stderr  # a key is never shown
    assert manage_check(**{"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_DEBUG": "false"}).returncode == 0


def test_a_misspelt_variable_is_warned_of_with_the_likely_name():
    result = manage_check(TENDEROPS_MONITOR_MOD="report", DJANGO_DEBUG="false")
    assert "tenderops.W005" in result.stderr and "TENDEROPS_MONITOR_MOD " in result.stderr
    assert "Did you mean TENDEROPS_MONITOR_MODE?" in result.stderr
    assert "W005" not in manage_check(TENDEROPS_MONITOR_MODE="report").stderr
    lower_case = manage_check(tenderops_monitor_mode="report").stderr
    assert "tenderops.W005" in lower_case and "tenderops_monitor_mode " in lower_case
    assert "Did you mean TENDEROPS_MONITOR_MODE? Variable names are case-sensitive." in lower_case
    # A setting's name that no variable sets (its value is Django's mail backend's, in code).
    assert (
        "TENDEROPS_ALERT_EMAIL_BACKEND " in manage_check(TENDEROPS_ALERT_EMAIL_BACKEND="x").stderr
    )


def test_production_without_a_database_address_is_refused():
    # The embedded SQLite database holds no tender runs: tenderops would see nothing stuck.
    result = manage_check(DATABASE_URL="", DJANGO_DEBUG="false")
    assert result.returncode == 2 and "DATABASE_URL must be set" in result.stderr
    assert manage_check(DATABASE_URL="", DJANGO_DEBUG="true").returncode == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TENDEROPS_TIME_ZONE", "Mars/Olympus"),
        ("TENDEROPS_RETENTION_TIME", "25:00"),
        ("TENDEROPS_RETENTION_TIME", "²:00"),  # isdigit() says yes, int() says no
        ("TENDEROPS_RETENTION_TIME", "03:²0"),
        ("TENDEROPS_RETENTION_TIME", "٣:٠٠"),
        ("TENDEROPS_RETENTION_TIME", "03:30:15"),  # a daily job starts on the minute
    ],
)
def test_time_settings_are_checked(name, value):
    result = manage_check(**{name: value})
    assert result.returncode == 2 and name in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_webhook_address_is_refused_without_showing_its_key():
    key = "wecom-key-never-shown-8e21"
    result = manage_check(
        TENDEROPS_WECOM_WEBHOOK_URL=f"qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"
    )
    assert result.returncode == 2
    assert "TENDEROPS_WECOM_WEBHOOK_URL" in result.stderr and key not in result.stderr


def test_tls_and_ssl_together_are_refused():
    result = manage_check(EMAIL_USE_TLS="true", EMAIL_USE_SSL="true")
    assert result.returncode == 2 and "EMAIL_USE_TLS" in result.stderr


def test_every_alert_setting_together_passes_the_check():
    result = manage_check(
        TENDEROPS_ALERT_EMAILS="ops@example.com,oncall@example.com",
        TENDEROPS_ALERT_WEBHOOK_URL="https://hooks.example.com/tenderops",
        TENDEROPS_WECOM_WEBHOOK_URL="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        TENDEROPS_DINGTALK_WEBHOOK_URL="https://oapi.dingtalk.com/robot/send?access_token=t",
        TENDEROPS_DINGTALK_SECRET="SECabc",
        TENDEROPS_FEISHU_WEBHOOK_URL="https://open.feishu.cn/open-apis/bot/v2/hook/abc",
        TENDEROPS_FEISHU_SECRET="fs",
        TENDEROPS_ALERT_LANGUAGE="EN",
        TENDEROPS_PUBLIC_URL="https://tenderops.example.com/",
        TENDEROPS_METRICS_TOKEN="metrics-token-for-the-check",
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_USE_TLS="true",
    )
    assert result.returncode == 0, result.stderr


def test_a_bad_database_address_is_refused_without_showing_its_password():
    result = manage_check(DATABASE_URL="postgres://ops:pw-never-shown-41@127.0.0.1:abc/tender")
    assert result.returncode == 2 and "DATABASE_URL" in result.stderr
    assert "pw-never-shown-41" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b"])
def test_a_variable_whose_name_hides_a_byte_order_mark_is_refused(invisible):
    # Unrefused, the production database address would be ignored for the embedded SQLite one.
    result = manage_check(**{f"{invisible}DATABASE_URL": "postgres://ops@127.0.0.1:5432/tender"})
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL" in result.stderr and "byte-order mark" in result.stderr
    assert "Traceback" not in result.stderr


def test_good_database_and_redis_addresses_pass_the_check():
    result = manage_check(
        DATABASE_URL="postgres://ops:p%23w@127.0.0.1:5432/tender",
        REDIS_URL="redis://127.0.0.1:6379/0",
        TENDEROPS_CLUSTER_NAME="tenderops-staging.2",
    )
    assert result.returncode == 0, result.stderr


def test_an_unknown_kind_in_the_timeouts_is_a_warning_naming_it():
    result = manage_check(TENDEROPS_STUCK_TIMEOUTS="reveiw=30,review=20,docx=45")
    assert result.returncode == 0 and "tenderops.W001" in result.stderr
    assert "'reveiw'" in result.stderr and "'review'" not in result.stderr
    assert "'docx'" not in result.stderr  # an old row's run_type is a key too


def test_named_alert_addresses_and_a_time_with_seconds_are_accepted(monkeypatch):
    from tenderops.env import env_time_of_day
    from tenderops.env_mail import env_emails

    named = "运维值班 <ops@example.com>, Duty Team<duty@example.com>, oncall@example.com"
    monkeypatch.setenv("TENDEROPS_ALERT_EMAILS", named)
    assert env_emails("TENDEROPS_ALERT_EMAILS", 5) == [
        "运维值班 <ops@example.com>",
        "Duty Team<duty@example.com>",
        "oncall@example.com",
    ]
    monkeypatch.setenv("TENDEROPS_RETENTION_TIME", "03:30:00")
    assert env_time_of_day("TENDEROPS_RETENTION_TIME", "off") == time(3, 30)


def test_limits_that_undo_one_another_are_warned_of():
    too_short = manage_check(TENDEROPS_MAX_RUN_MINUTES="5", TENDEROPS_STUCK_TIMEOUTS="review=3")
    assert too_short.returncode == 0 and "tenderops.W002" in too_short.stderr
    assert "TENDEROPS_STUCK_TIMEOUT_MINUTES (10)" in too_short.stderr
    assert "review (3)" not in too_short.stderr
    # Under the age rule the maximum runtime plays no part.
    assert (
        "W002" not in manage_check(TENDEROPS_MAX_RUN_MINUTES="5", TENDEROPS_STUCK_RULE="age").stderr
    )
    early = manage_check(
        TENDEROPS_FAIL_PENDING_AFTER_MINUTES="30", TENDEROPS_PENDING_ALERT_MINUTES="60"
    )
    assert early.returncode == 0 and "tenderops.W003" in early.stderr
    # A run picked up between two ticks 2 minutes apart is first seen past a 1-minute timeout.
    seldom = manage_check(
        TENDEROPS_MONITOR_INTERVAL_MINUTES="2", TENDEROPS_STUCK_TIMEOUTS="fastk=1,review=30"
    )
    assert seldom.returncode == 0 and "tenderops.W004" in seldom.stderr
    assert "fastk (1)" in seldom.stderr and "review (30)" not in seldom.stderr
    assert "tenderops.W" not in manage_check().stderr  # the defaults warn of nothing


def test_a_blank_text_setting_means_its_default(monkeypatch):
    from tenderops.env import env_text

    monkeypatch.setenv("TENDEROPS_STUCK_ERROR", "  ")
    assert env_text("TENDEROPS_STUCK_ERROR", "任务超时未完成") == "任务超时未完成"


def test_an_empty_list_variable_means_its_default(monkeypatch):
    from tenderops.env import env_list

    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", " ")
    assert env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost") == ["127.0.0.1", "localhost"]
