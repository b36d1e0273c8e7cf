"""/metrics: Prometheus' format, every series equal to what the database holds, counters that
never go down, and who may read it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection, transaction
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from runs.maintenance import increment, monitor_tick, prune_runs
from runs.maintenance.counters import ALERTS_SENT, LATE_FINISHES
from runs.maintenance.ticks import retention_tick
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun

MIN = timedelta(minutes=1)
METRICS_TOKEN = "metrics-token-7d1e"
API_TOKEN = "api-token-51c0"
SERIES = {
    "tenderops_runs",
    "tenderops_stuck_runs",
    "tenderops_waiting_runs",
    "tenderops_oldest_running_seconds",
    "tenderops_oldest_pending_seconds",
    "tenderops_monitor_last_success_timestamp_seconds",
    "tenderops_retention_last_success_timestamp_seconds",
    "tenderops_retention_scheduled",
    "tenderops_runs_failed_total",
    "tenderops_runs_pruned_total",
    "tenderops_late_finishes_total",
    "tenderops_alerts_sent_total",
}


@pytest.fixture(autouse=True)
def tokens(settings):
    settings.TENDEROPS_METRICS_TOKEN = METRICS_TOKEN
    settings.TENDEROPS_API_TOKEN = API_TOKEN


def scrape(client: Client | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample, by name and labels; every family (series, even without samples) is
    listed under ("family", name)."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        samples[("family", name)] = 1
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def names(samples) -> set[str]:
    return {labels for name, labels in samples if name == "family"}


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


@pytest.fixture
def world(make_run, settings):
    settings.TENDEROPS_PENDING_ALERT_MINUTES = 30
    for n in range(3):
        make_run(started_ago=(30 + n) * MIN)  # stuck
    make_run(started_ago=2 * MIN, kind="review", run_type="review")  # running
    make_run(status="pending", started_ago=45 * MIN, kind="review", run_type="review")  # waiting
    make_run(status="pending", started_ago=90 * MIN)  # waiting
    make_run(status="pending", started_ago=5 * MIN)  # pending
    make_run(status="success", started_ago=100 * 24 * 60 * MIN)  # expired
    make_run(status="cancelled", started_ago=5 * MIN)  # unknown: no series


@pytest.mark.postgres  # counts the database's way, in PostgreSQL's SQL
def test_every_named_series_equals_what_the_database_holds(client, world):
    before = scrape(client)
    assert names(before) >= SERIES
    counted = sql(
        "SELECT status, COALESCE(NULLIF(btrim(kind), ''), run_type), count(*) FROM tender_runs "
        "WHERE status IN ('pending', 'running') GROUP BY 1, 2"
    )
    assert {
        labels: value for (name, labels), value in before.items() if name == "tenderops_runs"
    } == {(("kind", kind), ("status", status)): n for status, kind, n in counted}
    assert before[("tenderops_stuck_runs", (("kind", "extract_project_info"),))] == 3
    assert before[("tenderops_waiting_runs", (("kind", "review"),))] == 1
    assert before[("tenderops_waiting_runs", (("kind", "extract_project_info"),))] == 1
    ((oldest_running, oldest_pending),) = sql(
        "SELECT extract(epoch FROM now() - min(started_at) FILTER (WHERE status = 'running')), "
        "extract(epoch FROM now() - min(started_at) FILTER (WHERE status = 'pending')) "
        "FROM tender_runs"
    )
    assert before[("tenderops_oldest_running_seconds", ())] == pytest.approx(
        float(oldest_running), abs=5
    )
    assert before[("tenderops_oldest_pending_seconds", ())] == pytest.approx(
        float(oldest_pending), abs=5
    )
    assert before[("tenderops_monitor_last_success_timestamp_seconds", ())] == 0
    assert before[("tenderops_monitor_starting", ())] == 0  # due an hour ago (conftest): stale
    assert before[("tenderops_retention_last_success_timestamp_seconds", ())] == 0
    assert before[("tenderops_retention_scheduled", ())] == 1

    monitor_tick()
    prune_runs(actor=Actor.CLI)
    retention_tick()  # the schedule's: prune and stamp its heartbeat
    increment(LATE_FINISHES, {"kind": "review"}, 2)
    increment(ALERTS_SENT, {"channel": "wecom", "result": "sent"})
    after = scrape(client)
    assert names(after) >= SERIES
    assert (
        after[
            (
                "tenderops_runs_failed_total",
                (("actor", "schedule"), ("kind", "extract_project_info")),
            )
        ]
        == 3
    )
    assert after[("tenderops_runs_pruned_total", (("status", "success"),))] == 1
    assert after[("tenderops_late_finishes_total", (("kind", "review"),))] == 2
    assert after[("tenderops_alerts_sent_total", (("channel", "wecom"), ("result", "sent")))] == 1
    assert ("tenderops_stuck_runs", (("kind", "extract_project_info"),)) not in after
    beats = dict(sql("SELECT name, extract(epoch FROM last_finished_at) FROM tenderops_heartbeat"))
    assert after[("tenderops_monitor_last_success_timestamp_seconds", ())] == pytest.approx(
        float(beats["monitor"])
    )
    assert after[("tenderops_retention_last_success_timestamp_seconds", ())] == pytest.approx(
        float(beats["retention"])
    )


def test_a_counter_series_is_shown_at_zero_before_its_first_count(client, make_run, settings):
    # Prometheus' increase() takes a series' first sample as its start: a new kind's first
    # fleet, a robot's first refusal of its key, first scraped non-zero, counted nothing.
    settings.TENDEROPS_WECOM_WEBHOOK_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
    make_run(started_ago=30 * MIN, kind="compare_bids", run_type="compare_bids")
    before = scrape(client)
    failed = "tenderops_runs_failed_total"
    for actor in Actor.values:
        assert before[(failed, (("actor", actor), ("kind", "compare_bids")))] == 0
    refused = ("tenderops_alerts_sent_total", (("channel", "wecom"), ("result", "misconfigured")))
    assert before[refused] == 0
    assert (
        "tenderops_alerts_sent_total",
        (("channel", "feishu"), ("result", "sent")),
    ) not in before
    assert before[("tenderops_runs_pruned_total", (("status", "failed"),))] == 0
    assert not [key for key in before if key[0] == "tenderops_late_finishes_total"]
    settings.TENDEROPS_WECOM_WEBHOOK_URL = ""
    monitor_tick()
    after = scrape(client)
    assert after[(failed, (("actor", "schedule"), ("kind", "compare_bids")))] == 1
    assert after[("tenderops_late_finishes_total", (("kind", "compare_bids"),))] == 0


def test_counters_survive_a_prune_of_every_audited_run(client, make_run):
    runs = [make_run(started_ago=(30 + n) * MIN, kind=f"k{n % 2}") for n in range(6)]
    monitor_tick()
    failed = scrape(client)
    TenderRun.objects.filter(pk__in=[r.pk for r in runs]).update(
        started_at=runs[0].started_at - timedelta(days=400)
    )
    assert prune_runs(actor=Actor.CLI).deleted["failed"] == 6
    FailedRunRecord.objects.all().delete()
    MaintenanceAction.objects.all().delete()  # even the audit, pruned by hand
    after = scrape(client)
    for kind in ("k0", "k1"):
        key = ("tenderops_runs_failed_total", (("actor", "schedule"), ("kind", kind)))
        assert failed[key] == after[key] == 3
    assert after[("tenderops_runs_pruned_total", (("status", "failed"),))] == 6
    make_run(started_ago=30 * MIN, kind="k0")
    monitor_tick()
    key = ("tenderops_runs_failed_total", (("actor", "schedule"), ("kind", "k0")))
    assert scrape(client)[key] == 4


def test_a_failing_rolled_back_counts_nothing(make_run):
    run = make_run(started_ago=30 * MIN)
    with pytest.raises(RuntimeError), transaction.atomic():
        monitor_tick()
        raise RuntimeError("the caller's transaction fails after the tick")
    assert TenderRun.objects.get(pk=run.pk).status == "running"
    assert not sql("SELECT * FROM tenderops_counter")


def staff(*codenames: str) -> Client:
    user = User.objects.create_user(
        f"staff-{'-'.join(codenames) or 'none'}", password="pw", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_who_may_read_metrics_and_what_the_metrics_token_opens(make_run):
    run = make_run(started_ago=30 * MIN)
    anonymous = Client()
    assert anonymous.get("/metrics").status_code == 401
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    api_token = anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_TOKEN}")
    assert api_token.status_code == 403 and "This is the API token" in api_token.json()["error"]
    assert anonymous.get(f"/metrics?token={METRICS_TOKEN}").status_code == 401
    metrics_token = {"HTTP_AUTHORIZATION": f"Bearer {METRICS_TOKEN}"}
    assert anonymous.get("/metrics", **metrics_token).status_code == 200
    assert anonymous.post("/metrics", **metrics_token).status_code == 405
    assert anonymous.get("/metrics?x=1", **metrics_token).status_code == 400
    unreadable = anonymous.get("/metrics?%00=1", **metrics_token)  # was a redirect for a page
    assert unreadable.status_code == 400 and "error" in unreadable.json()
    scraped = anonymous.get("/metrics", **metrics_token)
    assert "no-store" in scraped["Cache-Control"] and "Accept" in scraped["Vary"]
    health = anonymous.get("/api/apps/tender/admin/health", **metrics_token)
    assert "no-store" in health["Cache-Control"]
    # The metrics token opens the health endpoint, and nothing that changes data.
    assert anonymous.get("/api/apps/tender/admin/health", **metrics_token).status_code == 503
    cleanup = anonymous.post("/api/apps/tender/admin/cleanup-stuck-runs", **metrics_token)
    assert cleanup.status_code == 403 and "metrics token" in cleanup.json()["error"]
    assert TenderRun.objects.get(pk=run.pk).status == "running"
    assert staff("view_tenderrun").get("/metrics").status_code == 200
    assert staff().get("/metrics").status_code == 403
    # Who may read health may read /metrics (a session that may only mark runs failed was
    # refused here and let into health).
    marker = staff("mark_failed_tenderrun")
    assert marker.get("/api/apps/tender/admin/health").status_code == 503
    assert marker.get("/metrics").status_code == 200


def test_openmetrics_is_served_when_asked_for(client, world):
    response = client.get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}",
        HTTP_ACCEPT="application/openmetrics-text; version=1.0.0",
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


@pytest.mark.postgres
def test_a_kind_is_a_label_as_it_reads(client, make_run):
    long_prefix = "k" * 150
    make_run(started_ago=2 * MIN, kind=long_prefix + "a")
    make_run(started_ago=2 * MIN, kind=long_prefix + "b")
    make_run(started_ago=2 * MIN, kind="rev\u202eiew")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    text = response.content.decode()
    assert "\u202e" not in text and max(len(line) for line in text.splitlines()) < 300
    samples = scrape()
    cut = "k" * 99 + "…"
    assert samples[("tenderops_runs", (("kind", cut), ("status", "running")))] == 2
    assert samples[("tenderops_runs", (("kind", "rev<U+202E>iew"), ("status", "running")))] == 1


def test_a_fresh_install_is_starting_for_prometheus_too(client, db):
    """As the health endpoint says "starting": the stale rule waits out the first interval."""
    from tests.conftest import scheduled_ago

    scheduled_ago(timedelta(seconds=10))
    assert scrape(client)[("tenderops_monitor_starting", ())] == 1
    monitor_tick()
    assert scrape(client)[("tenderops_monitor_starting", ())] == 0


@pytest.mark.postgres
def test_a_drifted_table_is_a_series_prometheus_can_alert_on(client, db):
    """Health says table_unsupported; the scrape, which most operators alert from, too."""
    from tests.test_adoption import WITHOUT_TIME_ZONE

    assert scrape(client)[("tenderops_table_problems", ())] == 0
    with connection.cursor() as cursor:
        cursor.execute(WITHOUT_TIME_ZONE)
        cursor.execute("ALTER TABLE tender_runs ALTER message TYPE varchar(20)")
    assert scrape(client)[("tenderops_table_problems", ())] == 2
