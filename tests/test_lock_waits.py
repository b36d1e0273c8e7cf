"""A table locked for minutes by another session (the backend's ALTER TABLE, a LOCK TABLE):
the monitor's tick, the API and the watchdog give way after a bounded wait and say so,
instead of holding a cluster worker, a gunicorn worker (a bare 500 at 30 s) or a cron slot
for as long as the lock lasts."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.test import Client

from runs.maintenance import db, monitor_tick
from runs.maintenance.db import gave_way
from runs.models import TenderRun
from tests.processes import current_database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HEALTH = "/api/apps/tender/admin/health"
CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"


def test_a_locked_table_makes_the_tick_the_api_and_the_watchdog_give_way(
    make_run, settings, monkeypatch
):
    settings.TENDEROPS_API_TOKEN = "lock-wait-token-16"
    stuck = make_run(started_ago=timedelta(minutes=30))
    holder = psycopg.connect(current_database_url())
    holder.execute("LOCK TABLE tender_runs IN ACCESS EXCLUSIVE MODE")
    # Released after two minutes whatever happens: a wait that is not bounded then ends,
    # and the test fails.
    safety = threading.Timer(120, holder.rollback)
    safety.start()
    try:
        with pytest.raises(DatabaseError) as caught:
            monitor_tick()  # waits LOCK_WAIT (10 s), as the cluster's tick does
        assert gave_way(caught.value)
        monkeypatch.setattr(db, "LOCK_WAIT", "200ms")
        health = Client().get(HEALTH, HTTP_AUTHORIZATION="Bearer lock-wait-token-16")
        assert health.status_code == 503 and "try again" in health.json()["error"]
        cleanup = Client().post(CLEANUP, HTTP_AUTHORIZATION="Bearer lock-wait-token-16")
        # Not "the database failed part-way": nothing had started.
        assert cleanup.status_code == 503 and "A table was locked" in cleanup.json()["error"]
        with pytest.raises(CommandError) as watchdog:
            call_command("tenderops_watchdog")
        assert watchdog.value.returncode == 3 and "gave way" in str(watchdog.value)
    finally:
        safety.cancel()
        holder.rollback()
        holder.close()
    assert monitor_tick().fixed_count == 1  # the lock gone, the next tick does its work
    assert TenderRun.objects.get(pk=stuck.pk).status == "failed"
