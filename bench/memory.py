"""The memory figure of bench/run.py: the peak RSS of a Django process that renders the stats
page, prunes 1 M rows and fails a fleet through the API (run as a child per size)."""

from __future__ import annotations

import os
import resource

from bench.scenario import (
    API_CLEANUP,
    EXPIRED,
    EXPIRED_SQL,
    FLEET,
    FLEET_PREFIX,
    PRUNE_DAYS,
    STUCK_SQL,
    TOKEN,
    django_setup,
)


def memory_probe() -> dict:
    """Peak RSS of a Django process that renders the stats page and prunes 1 M rows."""
    django_setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from runs.maintenance import observe_active_runs, prune_runs
    from runs.models import Actor

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    assert client.get("/admin/runs/tenderrun/stats/").status_code == 200
    after_stats = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with connection.cursor() as cursor:
        cursor.execute(EXPIRED_SQL, {"round": "memory", "count": EXPIRED})
    prune_runs(actor=Actor.CLI, **PRUNE_DAYS)
    after_prune = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # A fleet-wide crash failed through the API: its answer and its memory stay bounded.
    observe_active_runs()
    with connection.cursor() as cursor:
        cursor.execute(
            STUCK_SQL.format(table="tender_runs"),
            {
                "round": f"memory-{os.getpid()}",
                "count": FLEET,
                "step": "0.1 seconds",
                "prefix": FLEET_PREFIX,
            },
        )
    observe_active_runs()
    answer = client.post(API_CLEANUP, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200 and answer.json()["fixed_count"] >= FLEET, answer.content[:200]
    after_fleet = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    observe_active_runs()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tender_runs WHERE id LIKE %s", [r"tr\_z%"])
    return {
        "start_kib": before,
        "after_stats_kib": after_stats,
        "after_prune_kib": after_prune,
        "after_fleet_kib": after_fleet,
    }
