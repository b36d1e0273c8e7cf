"""What the benchmarks set up, shared by bench/run.py, its measuring worker and the probes:
the sizes of each figure, the rows they add (SQL) and the runbook's hand-written SQL.

Nothing here runs anything: the SQL is run by bench/worker.py, bench/memory.py and the
probe scripts (bench/prune_batches.py, bench/prune_costs.py, bench/tick_parts.py).
"""

from __future__ import annotations

import os

STUCK = 200
EXPIRED = 1_000_000
PRUNE_REPEAT = 3
TOKEN = "bench-token-for-the-client"  # noqa: S105 - a throwaway token for the in-process client
METRICS_TOKEN = "bench-metrics-token"  # noqa: S105 - a throwaway token for the client
# Alerts "sent" by the alerting tick go to a channel nobody listens on: without a cluster the
# delivery is only queued, which is all a tick ever does.
UNHEARD_WEBHOOK = "http://127.0.0.1:9/tenderops-bench"
EXPORT_ROWS = 10_000  # the CSV export probe: a filter of about this many rows (issue 16)

FIGURES = (
    "tick_changing",
    "tick_active",
    "tick",
    "quiet_tick",
    "fleet",
    "prune",
    "list",
    "stats",
    "viewers",
    "health",
    "metrics",
    "alert_tick",
    "export",
)
ACTIVE = 2_000  # live runs whose progress changes between ticks (issue 13)
FLEET = 100_000  # runs a fleet-wide crash leaves stuck at once (issue 16)
FLEET_REPEAT = 3
VIEWERS, VIEWER_ROUNDS, VIEWER_PERIOD_SECONDS = 10, 12, 10  # ten browsers, 2 minutes
FLEET_PREFIX = "tr_z"  # the fleets' ids: never a seeded id (those are tr_ and hex digits)
API_CLEANUP = "/api/apps/tender/admin/cleanup-stuck-runs"
# Live runs that write their progress (1,500 running, 500 pending), started a minute ago.
ACTIVE_SQL = """
INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, meta_json, progress,
                         message)
SELECT 'tr_act_' || %(label)s || '_' || g, p.ids[1 + g %% 100], 'risks', 'extract_risks',
       CASE WHEN g %% 4 = 0 THEN 'pending' ELSE 'running' END,
       now() - interval '1 minute', '{}'::jsonb, 0.01, '风险提取中...'
FROM generate_series(1, %(count)s) AS g,
     (SELECT array_agg(id) AS ids FROM (SELECT id FROM tender_projects LIMIT 100) AS p) AS p
RETURNING id
"""
RAW_TICK = (
    "UPDATE tender_runs_backend SET status = 'failed', finished_at = now(), "
    "error = '任务超时未完成', message = '任务异常终止：超时未完成' "
    "WHERE status = 'running' AND started_at < NOW() - INTERVAL '10 minutes'"
)
# The expired runs the prune figure deletes, and the retention that makes prune_runs delete
# exactly these.
EXPIRED_WHERE = "status = 'failed' AND started_at < NOW() - INTERVAL '900 days'"
RAW_DELETE = f"DELETE FROM tender_runs WHERE {EXPIRED_WHERE}"
PRUNE_DAYS = {"failed_days": 900, "success_days": 36_500}
RAW_GROUP_BY = "SELECT status, COALESCE(kind, run_type), count(*) FROM tender_runs GROUP BY 1, 2"
# What a tick meets in production, where the monitor runs every minute: runs that crossed
# their 10-minute timeout since the last ticks (a worker pool that died, its 200 runs started
# 11 to 61 minutes ago), with random ids like the backend's.
STUCK_SQL = """
INSERT INTO {table} (id, project_id, run_type, kind, status, started_at, meta_json, progress,
                     message)
SELECT %(prefix)s || md5('stuck' || %(round)s || '-' || g), p.ids[1 + g %% 100], 'risks',
       CASE WHEN g %% 3 = 0 THEN NULL ELSE 'extract_risks' END, 'running',
       now() - interval '11 minutes' - g * %(step)s::interval, '{{}}'::jsonb, 0.5,
       '风险提取中...'
FROM generate_series(1, %(count)s) AS g,
     (SELECT array_agg(id) AS ids FROM (SELECT id FROM tender_projects LIMIT 100) AS p) AS p
"""
# Ordered ids and times: the 1 M expired rows load in seconds, not minutes of random writes.
EXPIRED_SQL = """
INSERT INTO tender_runs (id, project_id, run_type, kind, status, started_at, finished_at,
                         error, meta_json, message)
SELECT 'tr_0' || %(round)s || lpad(g::text, 24, '0'), p.id, 'risks', 'extract_risks', 'failed',
       now() - interval '1000 days' - g * interval '1 second',
       now() - interval '1000 days' - g * interval '1 second' + interval '3 minutes',
       'LLM 调用超时', '{}'::jsonb, '任务失败'
FROM generate_series(1, %(count)s) AS g, (SELECT id FROM tender_projects LIMIT 1) AS p
"""

# How many heap pages hold the expired runs: the layout a prune works through.
EXPIRED_PAGES_SQL = (
    f"SELECT count(DISTINCT (ctid::text::point)[0]) FROM tender_runs WHERE {EXPIRED_WHERE}"
)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")
    os.environ["TENDEROPS_API_TOKEN"] = TOKEN
    os.environ["TENDEROPS_METRICS_TOKEN"] = METRICS_TOKEN
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    import django

    django.setup()
