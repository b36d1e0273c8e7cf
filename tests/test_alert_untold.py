"""The monitor's failings are told once, even by another tick: a tick stopped between its
committed batches and its digest (killed, or the digest could not be recorded) leaves its
actions untold, and the next tick tells them (runs.maintenance.ticks.tell_failed). Late
finishes are noted and counted together, whatever becomes of their alert."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.db.models.functions import Now

from runs.alerting.messages import render
from runs.maintenance import fail_stuck_runs, monitor_tick, telling
from runs.maintenance import ticks as ticks_module
from runs.maintenance.heartbeat import MONITOR
from runs.models import Actor, Alert, MaintenanceAction, TenderRun
from tests.console import list_count
from tests.processes import current_database_url
from tests.test_fleet_crash import stuck_runs

pytestmark = pytest.mark.postgres


def stopped_tick(batch_size: int = 500) -> list[int]:
    """What a monitor tick killed after its batches leaves: the runs failed and audited, the
    actions committed, no digest. Returns the actions."""
    result = fail_stuck_runs(
        actor=Actor.SCHEDULE, heartbeat=MONITOR, alert=True, batch_size=batch_size
    )
    assert result.fixed_count and not Alert.objects.exists()
    return list(result.action_ids)


def untold() -> set[int]:
    return set(MaintenanceAction.objects.filter(alert_pending=True).values_list("pk", flat=True))


def digest_counts(alert: Alert) -> dict[str, int]:
    return {kind: entry["count"] for kind, entry in alert.facts["kinds"].items()}


@pytest.mark.django_db
def test_the_next_tick_tells_the_runs_a_stopped_tick_failed_with_its_own(project, admin_client):
    risks = stuck_runs(project, 1_200)
    early_reviews = stuck_runs(project, 30, "early", kind="review")
    actions = stopped_tick()
    assert len(actions) == 3 and untold() == set(actions)
    late_reviews = stuck_runs(project, 20, "late", kind="review")

    result = monitor_tick()
    assert result.fixed_count == 20  # its own
    (digest,) = Alert.objects.filter(event="monitor_failed")
    assert digest_counts(digest) == {"extract_risks": 1_200, "review": 50}
    assert digest.facts["total"] == 1_250
    assert digest.facts["action_id"] == actions[0]  # the stopped tick's runs, first
    # Oldest first (stuck_runs starts each next run a second earlier), the stopped tick's
    # before this one's.
    assert digest.facts["kinds"]["extract_risks"]["ids"] == risks[::-1][:5]
    assert digest.facts["kinds"]["review"]["ids"] == early_reviews[::-1][:5]
    assert not untold()
    # Its link lists every run it tells: the stopped tick's cleanup and this tick's.
    assert digest.facts["action_ids"] == [actions[0], result.action_id]
    link = render(digest, "en").link
    assert link.endswith(f"?action={actions[0]}%2C{result.action_id}")
    assert list_count(admin_client.get(link).content.decode()) == 1_250
    for odd in ("1,x", ",".join(["1"] * 101), "1,,2", "-1"):
        page = admin_client.get(f"/admin/runs/tenderrun/?action={odd}", follow=True)
        assert page.status_code == 200 and "Ignored" in page.content.decode()

    monitor_tick()  # nothing left to tell, nothing told twice
    assert Alert.objects.filter(event="monitor_failed").count() == 1
    assert late_reviews  # failed by the tick above, told in its digest


@pytest.mark.django_db
def test_a_quiet_tick_tells_what_a_stopped_tick_left(project):
    stuck_runs(project, 40)
    actions = stopped_tick()
    result = monitor_tick()
    assert result.fixed_count == 0
    (digest,) = Alert.objects.filter(event="monitor_failed")
    assert digest_counts(digest) == {"extract_risks": 40}
    assert digest.facts["action_id"] == actions[0] and digest.facts["rule"] == "silence"
    assert not untold()


@pytest.mark.django_db
def test_a_digest_that_could_not_be_recorded_is_told_by_the_next_tick(project, monkeypatch):
    stuck_runs(project, 25)
    failing_once = [True]
    raise_digest = telling.raise_digest

    def refuse_once(*args, **kwargs):
        if failing_once.pop() if failing_once else False:
            raise DatabaseError("the alert tables are unavailable")
        return raise_digest(*args, **kwargs)

    monkeypatch.setattr(telling, "raise_digest", refuse_once)
    first = monitor_tick()
    assert first.fixed_count == 25 and not Alert.objects.exists()
    assert untold() == set(first.action_ids)  # undone with the digest: still to tell
    monitor_tick()
    (digest,) = Alert.objects.filter(event="monitor_failed")
    assert digest_counts(digest) == {"extract_risks": 25}
    assert not untold()


@pytest.mark.django_db(transaction=True)
def test_untold_actions_another_tick_is_telling_are_left_to_it(project):
    """A tick tells only the actions it locks: while another holds them (telling them), it
    tells nothing of them and waits for none; once that one gives up, the next tick tells
    them, once."""
    stuck_runs(project, 30)
    actions = stopped_tick()
    locked, release = threading.Event(), threading.Event()

    def other_teller() -> None:
        with psycopg.connect(current_database_url()) as conn:
            conn.execute(
                "SELECT id FROM tenderops_maintenance_action WHERE alert_pending FOR UPDATE"
            ).fetchall()
            locked.set()
            release.wait(timeout=120)
            conn.rollback()  # it stopped before telling

    thread = threading.Thread(target=other_teller)
    thread.start()
    try:
        assert locked.wait(timeout=60)
        monitor_tick()
        assert not Alert.objects.exists() and untold() == set(actions)
    finally:
        release.set()
        thread.join(timeout=60)
    monitor_tick()
    monitor_tick()
    (digest,) = Alert.objects.filter(event="monitor_failed")
    assert digest_counts(digest) == {"extract_risks": 30}
    assert not untold()
    connection.close()


@pytest.mark.django_db
def test_only_the_monitors_failings_wait_to_be_told(project, make_run, admin_client):
    stuck_runs(project, 5)
    fail_stuck_runs(actor=Actor.CLI)
    stuck_runs(project, 5, "api")
    fail_stuck_runs(actor=Actor.API)
    assert MaintenanceAction.objects.count() == 2 and not untold()
    monitor_tick()
    assert not Alert.objects.filter(event="monitor_failed").exists()


@pytest.mark.django_db
def test_late_finishes_are_counted_with_their_noting_even_when_no_alert_can_be_recorded(
    project, monkeypatch, caplog
):
    """The sweep noted in one transaction and counted in another: stopped between the two
    (here the counting fails, as a killed process would stop it), the late finishes stayed
    noted and were never counted (the Prometheus rule never fired). Now noting and counting
    commit together; an alert that cannot be recorded is logged and keeps neither from
    happening."""
    from runs.maintenance import late_finish_tick
    from runs.maintenance.counters import LATE_FINISHES, read
    from runs.models import FailedRunRecord, TenderRun

    ids = stuck_runs(project, 4)
    fail_stuck_runs(actor=Actor.CLI)
    TenderRun.objects.filter(pk__in=ids).update(status="success")  # the workers were alive
    increment = ticks_module.increment

    def stopped(*args, **kwargs):
        raise DatabaseError("the sweep stopped here")

    monkeypatch.setattr(ticks_module, "increment", stopped)
    with pytest.raises(DatabaseError):
        late_finish_tick()
    assert not FailedRunRecord.objects.filter(finished_late_at__isnull=False).exists()
    monkeypatch.setattr(ticks_module, "increment", increment)

    def refuse(*args, **kwargs):
        raise DatabaseError("the alert tables are unavailable")

    monkeypatch.setattr(ticks_module, "raise_digest", refuse)
    assert len(late_finish_tick()) == 4
    assert FailedRunRecord.objects.filter(finished_late_at__isnull=False).count() == 4
    assert read(LATE_FINISHES) == {(("kind", "extract_risks"),): 4}
    assert not Alert.objects.exists() and "could not record its alert" in caplog.text
    assert late_finish_tick() == []  # noted and counted once
    assert read(LATE_FINISHES) == {(("kind", "extract_risks"),): 4}


@pytest.mark.django_db
def test_a_crash_loops_digest_links_its_own_cleanup_and_says_what_it_leaves_out(
    project, monkeypatch
):
    """More stopped ticks than a link holds (a cluster killed tick after tick): the link
    keeps the telling tick's own cleanup and the earliest others, and says how many it
    lists; every kind shows run ids, even one past the tick's first listed runs."""
    monkeypatch.setattr(telling, "LINKED_CLEANUPS", 2)
    stopped = []
    for n in range(3):
        stuck_runs(project, 10, f"stopped{n}")
        stopped.append(stopped_tick()[0])
    stuck_runs(project, 1_000, "many")
    late = stuck_runs(project, 3, "late", kind="review")  # started last: not listed
    TenderRun.objects.filter(pk__in=late).update(started_at=Now() - timedelta(minutes=20))
    result = monitor_tick()
    assert result.fixed_count == 1_003 and all(run.kind != "review" for run in result.stuck_runs)
    (digest,) = Alert.objects.filter(event="monitor_failed")
    assert digest.facts["action_ids"] == [stopped[0], result.action_id]
    assert digest.facts["cleanups"] == 4 and digest.facts["total"] == 1_033
    message = render(digest, "en")
    assert "The link lists the runs of 2 of the 4 cleanups told here." in message.lines
    assert sorted(digest.facts["kinds"]["review"]["ids"]) == sorted(late)


@pytest.mark.django_db
def test_failings_of_kinds_in_their_cooldown_are_told_when_it_ends(project, settings):
    """A kind told a minute ago: its runs failed since were marked told and appeared in no
    digest (a fleet failed over seven ticks was told its first tick's 5,800 runs of 20,000).
    They wait for the cooldown's end, costing the quiet ticks meanwhile nothing, and are not
    swallowed by another kind's digest."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from runs.models import AlertGate

    settings.TENDEROPS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    stuck_runs(project, 5)
    monitor_tick()
    assert digest_counts(Alert.objects.get(event="monitor_failed")) == {"extract_risks": 5}
    stuck_runs(project, 7, "later")
    assert monitor_tick().fixed_count == 7
    assert Alert.objects.filter(event="monitor_failed").count() == 1  # within the cooldown
    (waiting,) = MaintenanceAction.objects.filter(alert_pending=True)
    gate = AlertGate.objects.get(event="monitor_failed", kind="extract_risks")
    cooldown = timedelta(minutes=settings.TENDEROPS_ALERT_COOLDOWN_MINUTES)
    assert waiting.alert_due_at == gate.last_raised_at + cooldown
    with CaptureQueriesContext(connection) as quiet:
        monitor_tick()
    assert len(quiet.captured_queries) == 1  # a quiet tick stays one statement
    stuck_runs(project, 3, "other", kind="review")  # another kind's digest meanwhile
    monitor_tick()
    other = Alert.objects.filter(event="monitor_failed").latest("pk")
    assert digest_counts(other) == {"review": 3} and other.facts["total"] == 3
    assert set(MaintenanceAction.objects.filter(alert_pending=True)) == {waiting}
    # The cooldown passes.
    AlertGate.objects.filter(event="monitor_failed").update(last_raised_at=Now() - cooldown)
    MaintenanceAction.objects.filter(pk=waiting.pk).update(alert_due_at=Now())
    assert monitor_tick().fixed_count == 0  # a quiet tick tells them
    later = Alert.objects.filter(event="monitor_failed").latest("pk")
    assert digest_counts(later) == {"extract_risks": 7} and later.facts["total"] == 7
    assert not untold()


@pytest.mark.django_db
def test_a_tick_whose_failings_another_told_tells_only_the_rest(project, make_run):
    """A tick slow to tell found its own actions told by another tick meanwhile: it tells
    the failings still untold (a stopped tick's), not its own a second time."""
    slow = [make_run(started_ago=timedelta(minutes=30 + n), kind="review") for n in range(4)]
    slow_result = fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR, alert=True)
    assert slow_result.fixed_count == len(slow)
    monitor_tick()  # another tick tells them
    for n in range(3):
        make_run(started_ago=timedelta(minutes=30 + n), kind="docx")
    fail_stuck_runs(actor=Actor.SCHEDULE, heartbeat=MONITOR, alert=True)  # a tick then stopped
    telling.tell_failed(slow_result)
    latest = Alert.objects.filter(event="monitor_failed").latest("pk")
    assert digest_counts(latest) == {"docx": 3} and latest.facts["total"] == 3
