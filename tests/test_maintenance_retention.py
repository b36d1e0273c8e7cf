"""Retention (runs/maintenance/retention.py)."""

from datetime import timedelta

import pytest

from runs.maintenance import InvalidParameter, PruneResult, prune_runs
from runs.maintenance.retention import _next_batch_size
from runs.models import Actor, MaintenanceAction, TenderRun
from tests.conftest import statuses

DAY = timedelta(days=1)


@pytest.fixture
def retention_rows(make_run):
    """Default policy: failed kept 30 days, success 90 days, by started_at."""
    expired = [
        *(make_run(status="failed", started_ago=(31 + n) * DAY) for n in range(4)),
        *(make_run(status="success", started_ago=(91 + n) * DAY) for n in range(3)),
    ]
    kept = [
        make_run(status="failed", started_ago=29 * DAY),
        make_run(status="success", started_ago=89 * DAY),
        make_run(status="success", started_ago=40 * DAY),
        make_run(status="pending", started_ago=400 * DAY),
        make_run(status="running", started_ago=400 * DAY),
        make_run(status="cancelled", started_ago=400 * DAY),
        make_run(status="Failed", started_ago=400 * DAY),
    ]
    return expired, kept


def test_deletes_exactly_the_expired_finished_runs(retention_rows):
    expired, kept = retention_rows
    result = prune_runs(actor=Actor.CLI)
    assert result.deleted == {"failed": 4, "success": 3}
    remaining = set(TenderRun.objects.values_list("pk", flat=True))
    assert remaining == {run.pk for run in kept}
    action = MaintenanceAction.objects.get()
    assert (action.kind, action.actor, action.affected_count, action.completed) == (
        "prune",
        "cli",
        7,
        True,
    )
    assert action.parameters["deleted"] == {"failed": 4, "success": 3}


def test_custom_days(retention_rows):
    expired, kept = retention_rows
    result = prune_runs(actor=Actor.CLI, failed_days=400, success_days=30)
    assert result.deleted == {"failed": 0, "success": 5}
    assert statuses(kept[2]) == ["<deleted>"]


def test_batches_respect_the_batch_size(retention_rows):
    seen: list[int] = []
    prune_runs(actor=Actor.CLI, batch_size=3, on_batch=lambda r: seen.append(r.total))
    per_batch = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    assert max(per_batch) == 3
    # failed: 3, then the last 1; success: its 3 are all there is
    assert per_batch == [3, 1, 3]


def test_runs_started_at_the_same_instant_go_in_one_batch(make_run):
    """A batch ends between two start times; five runs that share one are deleted together
    rather than never (the batch may then exceed its size)."""
    same = [make_run(status="failed", started_ago=40 * DAY) for _ in range(5)]
    TenderRun.objects.filter(pk__in=[run.pk for run in same]).update(started_at=same[0].started_at)
    older = make_run(status="failed", started_ago=50 * DAY)
    kept = make_run(status="failed", started_ago=20 * DAY)
    seen: list[int] = []
    result = prune_runs(actor=Actor.CLI, batch_size=2, on_batch=lambda r: seen.append(r.total))
    assert result.deleted["failed"] == 6
    assert statuses(older, kept, *same) == ["<deleted>", "failed", *["<deleted>"] * 5]
    assert seen[-1] == 6


@pytest.mark.parametrize(
    ("size", "seconds", "largest", "expected"),
    [
        (10_000, 0.05, 100_000, 20_000),  # fast: grows, at most twice as large
        (80_000, 0.01, 100_000, 100_000),  # never beyond the configured size
        (40_000, 1.0, 100_000, 20_000),  # slow: shrinks, at most by half
        (40_000, 0.5, 100_000, 20_000),
        (1_500, 5.0, 100_000, 1_000),  # never below 1,000
        (3, 5.0, 3, 3),  # nor above a configured size smaller than that
    ],
)
def test_batches_are_steered_toward_a_quarter_second(size, seconds, largest, expected):
    assert _next_batch_size(size, seconds, largest) == expected


def test_dry_run_counts_and_changes_nothing(retention_rows):
    before = TenderRun.objects.count()
    preview = prune_runs(actor=Actor.CLI, dry_run=True)
    assert preview.deleted == {"failed": 4, "success": 3}
    assert TenderRun.objects.count() == before
    assert not MaintenanceAction.objects.exists()
    assert prune_runs(actor=Actor.CLI).deleted == preview.deleted


class Interrupted(Exception):
    pass


def stop_after_first_batch(result: PruneResult) -> None:
    raise Interrupted


@pytest.mark.django_db(transaction=True)
def test_interrupted_prune_keeps_its_first_batch_and_a_rerun_finishes(retention_rows):
    expired, kept = retention_rows
    with pytest.raises(Interrupted):
        prune_runs(actor=Actor.SCHEDULE, batch_size=2, on_batch=stop_after_first_batch)
    assert TenderRun.objects.count() == len(expired) + len(kept) - 2
    unfinished = MaintenanceAction.objects.get()
    assert (unfinished.affected_count, unfinished.completed) == (2, False)

    result = prune_runs(actor=Actor.SCHEDULE, batch_size=2)
    assert result.total == len(expired) - 2
    assert set(TenderRun.objects.values_list("pk", flat=True)) == {run.pk for run in kept}
    assert MaintenanceAction.objects.filter(completed=True).count() == 1


def test_nothing_to_prune_writes_no_audit(make_run):
    make_run(status="failed", started_ago=DAY)
    assert prune_runs(actor=Actor.SCHEDULE).total == 0
    assert not MaintenanceAction.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failed_days": 0},
        {"success_days": -1},
        {"batch_size": 0},
        {"batch_size": 10**9},
        {"failed_days": 10**7},
        {"failed_days": "30"},
    ],
)
def test_bad_parameters_delete_nothing(kwargs, retention_rows):
    before = TenderRun.objects.count()
    with pytest.raises(InvalidParameter):
        prune_runs(actor=Actor.CLI, **kwargs)
    assert TenderRun.objects.count() == before


@pytest.mark.postgres  # a second connection holds rows: PostgreSQL's locks
@pytest.mark.django_db(transaction=True)
def test_in_a_deadlock_with_the_backend_the_prune_gives_way(make_run):
    """The backend holds an expired run; a prune batch locks the rest and waits for it; the
    backend then reaches for one the batch holds. PostgreSQL undoes one of the two, and it
    was sometimes the backend's (found by the attacker): the prune waits less than the
    deadlock check and gives way, its batch is tried again, and the backend commits."""
    import threading

    import psycopg

    from tests.processes import current_database_url
    from tests.test_races import wait_until_blocked

    first, *middle, last = [make_run(status="failed", started_ago=(40 - n) * DAY) for n in range(6)]
    url = current_database_url()
    outcome: dict = {}
    connected = threading.Event()

    def prune() -> None:
        from django.db import connection

        try:
            outcome["pid"] = connection.cursor().connection.info.backend_pid
            connected.set()
            outcome["result"] = prune_runs(actor=Actor.CLI)
        finally:
            connection.close()

    with psycopg.connect(url) as backend:
        backend.execute("UPDATE tender_runs SET message = 'retried' WHERE id = %s", [last.pk])
        pruning = threading.Thread(target=prune)
        pruning.start()
        assert connected.wait(60)
        wait_until_blocked(outcome["pid"], url)  # the batch holds the others, waits for last
        backend.execute("UPDATE tender_runs SET status = 'running' WHERE id = %s", [first.pk])
        backend.commit()  # no deadlock error: the prune gave way
    pruning.join(timeout=60)
    assert outcome["result"].total == 5  # all but the one the backend took back
    assert statuses(first) == ["running"]
    assert not TenderRun.objects.filter(pk__in=[last.pk, *(run.pk for run in middle)]).exists()


@pytest.mark.postgres  # a second connection holds rows: PostgreSQL's locks
@pytest.mark.django_db(transaction=True)
def test_a_row_held_all_along_stops_the_prune_saying_so(make_run):
    """After its attempts the prune stops, and says why: it said "unreachable, not migrated
    or refusing … check DATABASE_URL" of a deadlock (found by the attacker)."""
    import psycopg
    from django.core.management import CommandError, call_command

    from tests.processes import current_database_url

    held = make_run(status="failed", started_ago=40 * DAY)
    with psycopg.connect(current_database_url()) as backend:
        backend.execute("SELECT 1 FROM tender_runs WHERE id = %s FOR UPDATE", [held.pk])
        with pytest.raises(CommandError) as stopped:
            call_command("prune_runs")
    message = str(stopped.value)
    assert message.startswith("The database gave way to other work on the same rows")
    assert "DATABASE_URL" not in message and "run the command again" in message
    assert statuses(held) == ["failed"]


@pytest.mark.postgres  # PostgreSQL's statement_timeout
@pytest.mark.django_db(transaction=True)
def test_a_batch_that_runs_too_long_is_cancelled_and_tried_again_smaller(project):
    """Batches follow the last one's pace: one that a slowing machine drags past its limit
    held its locks for as long (1.3 s at 10 M on a slow machine). Here a deletion of more
    than 3,000 runs stalls for 5 s, then leaves a mark; the prune's statement limit cancels
    it before, and smaller batches delete every expired run."""
    from django.db import connection

    from tests.test_races import bulk_runs

    bulk_runs(project, 6000, status="failed", started_ago=40 * DAY, label="old")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE stalled_deletions (rows int)")
        cursor.execute(
            "CREATE FUNCTION stall_big_deletions() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "DECLARE deleted int; BEGIN SELECT count(*) INTO deleted FROM gone; "
            "IF deleted > 3000 THEN PERFORM pg_sleep(5); "
            "INSERT INTO stalled_deletions VALUES (deleted); END IF; RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER stall_big_deletions AFTER DELETE ON tender_runs "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION stall_big_deletions()"
        )
    try:
        result = prune_runs(actor=Actor.CLI)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM stalled_deletions")
            stalled = cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER stall_big_deletions ON tender_runs")
            cursor.execute("DROP FUNCTION stall_big_deletions()")
            cursor.execute("DROP TABLE stalled_deletions")
    assert stalled == 0  # no batch outlasted its limit
    assert result.deleted["failed"] == 6000 and not TenderRun.objects.exists()
