"""With debug off, every unhandled error of a request reaches stderr with its traceback, and no
configured secret reaches any log line."""

import io
import logging

import pytest
from django.contrib.auth.models import User
from django.test import Client

import runs.admin.views


@pytest.fixture
def captured_console():
    handler = next(h for h in logging.getLogger("django.request").handlers if h.name == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_an_admin_500_is_logged_with_its_traceback(db, captured_console, monkeypatch):
    def broken_stats():
        raise RuntimeError("stats exploded")

    monkeypatch.setattr(runs.admin.views, "read_stats_snapshot", broken_stats)
    user = User.objects.create_superuser("boss", password="pw")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    assert client.get("/admin/runs/tenderrun/stats/").status_code == 500
    logged = captured_console.getvalue()
    assert "Internal Server Error: /admin/runs/tenderrun/stats/" in logged
    assert "Traceback" in logged and "stats exploded" in logged


def test_secrets_never_reach_a_log_line(settings, captured_console):
    settings.TENDEROPS_API_TOKEN = "very-secret-token-value"
    logger = logging.getLogger("django.request")
    try:
        raise ValueError("failed with very-secret-token-value inside")
    except ValueError:
        logger.exception("calling with %s", "very-secret-token-value")
    logged = captured_console.getvalue()
    assert "very-secret-token-value" not in logged
    assert logged.count("[redacted]") >= 2  # the message and the exception
