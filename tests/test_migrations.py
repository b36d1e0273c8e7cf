"""The migrations: forward on a fresh database, all the way back, and forward again.

`migrate runs zero` takes back exactly what tenderops added (its own tables, its indexes on
``tender_runs``, the fillfactor) and never the adopted tables or their rows; where it cannot,
it stops before changing anything.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from runs.maintenance import observe_active_runs
from runs.models import RunObservation, TenderRun
from tests.conftest import LIVE_SCHEMA
from tests.databases import manage, run_sql, scratch_database, server_url

OWN_TABLES = {
    "tenderops_maintenance_action",
    "tenderops_failed_run",
    "tenderops_heartbeat",
    "tenderops_run_observation",
    "tenderops_alert",
    "tenderops_alert_gate",
    "tenderops_alert_delivery",
    "tenderops_alert_attempt",
    "tenderops_counter",
    "tenderops_stats_snapshot",
}
ADOPTED_TABLES = {"tender_projects", "tender_runs"}
OWN_RUN_INDEXES = {
    "tenderops_running_started",
    "tenderops_pending_started",
    "tenderops_status_started",
    "tenderops_started_id",
}
MIGRATIONS = [
    "0001_adopt_tender_tables",
    "0002_audit_log",
    "0003_tender_runs_indexes",
    "0004_liveness",
    "0005_pending_index",
    "0006_alerts_and_counters",
    "0007_stats_snapshot",
    "0008_observation_storage",
    "0009_late_finish_index",
    "0010_observation_of_run",
    "0011_fingerprints_as_chained_hashes",
    "0012_alert_resolved",
    "0013_observation_running_since",
    "0014_action_alert_pending",
    "0015_action_alert_due_at",
    "0016_delivery_recipients_left",
]
# The pre-release chain squashed into 0002 and 0003; databases that applied it keep its rows.
SQUASHED = [
    "0004_heartbeat",
    "0005_heartbeat_without_start",
    "0006_audit_without_redundant_constraint",
    "0007_audit_run_index_without_like",
    "0008_audit_action_without_constraint",
    "0009_tender_runs_fillfactor",
]


def catalog(database: str) -> dict:
    """Tables, every index, tender_runs' storage options and the runs migrations applied."""
    return {
        "tables": {
            name
            for (name,) in run_sql(
                database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        },
        "indexes": dict(
            run_sql(
                database,
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
            )
        ),
        "tender_runs_options": run_sql(
            database, "SELECT reloptions FROM pg_class WHERE oid = 'tender_runs'::regclass"
        )[0][0],
        "observation_options": run_sql(
            database,
            "SELECT reloptions FROM pg_class WHERE relname = 'tenderops_run_observation'",
        ),
        "runs_migrations": [
            name
            for (name,) in run_sql(
                database, "SELECT name FROM django_migrations WHERE app = 'runs' ORDER BY name"
            )
        ],
    }


def a_run(database: str) -> list[tuple]:
    return run_sql(
        database,
        "SELECT r.id, r.status, r.message, p.name FROM tender_runs r "
        "JOIN tender_projects p ON p.id = r.project_id",
    )


def test_every_migration_operation_can_be_reversed():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = {key: m for key, m in loader.disk_migrations.items() if key[0] == "runs"}
    assert sorted(name for _, name in ours) == MIGRATIONS
    for (_, name), migration in ours.items():
        for operation in migration.operations:
            assert operation.reversible, f"{name}: {operation.describe()}"


@pytest.mark.postgres
def test_migrate_runs_zero_takes_back_only_what_tenderops_added_then_forward_again(db):
    with scratch_database() as name:
        migrated = manage(name, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        full = catalog(name)
        assert full["tables"] >= OWN_TABLES | ADOPTED_TABLES
        own_indexes = {index for index in full["indexes"] if index.startswith("tenderops_")}
        assert own_indexes >= OWN_RUN_INDEXES
        assert full["tender_runs_options"] == ["fillfactor=90"]
        # The hot observation table: room for HOT updates, no text_pattern_ops index.
        assert full["observation_options"] == [(["fillfactor=50"],)]
        observation_indexes = [
            definition
            for index, definition in full["indexes"].items()
            if "tenderops_run_observation" in definition
        ]
        assert len(observation_indexes) == 1 and "pattern_ops" not in observation_indexes[0]
        assert full["runs_migrations"] == MIGRATIONS
        run_sql(
            name,
            "INSERT INTO tender_projects (id, kb_id, name) VALUES ('tp_keep', 'kb', '保留的项目');"
            "INSERT INTO tender_runs (id, project_id, run_type, status, message) "
            "VALUES ('tr_keep', 'tp_keep', 'risks', 'running', '风险提取中...')",
        )
        the_run = a_run(name)
        assert the_run == [("tr_keep", "running", "风险提取中...", "保留的项目")]

        zero = manage(name, "migrate", "runs", "zero", "--noinput")
        assert zero.returncode == 0, zero.stderr
        back = catalog(name)
        assert back["tables"] >= ADOPTED_TABLES
        assert not OWN_TABLES & back["tables"]
        # Every other index (the adopted tables' own among them) is still there, unchanged.
        assert back["indexes"] == {
            index: sql for index, sql in full["indexes"].items() if index not in own_indexes
        }
        assert back["tender_runs_options"] is None
        assert back["runs_migrations"] == []
        assert a_run(name) == the_run
        # Nor its schedules, whose tasks would fail every minute on the tables gone.
        assert run_sql(name, "SELECT name FROM django_q_schedule") == []

        again = manage(name, "migrate", "--noinput")
        assert again.returncode == 0, again.stderr
        assert catalog(name) == full
        assert a_run(name) == the_run


@pytest.mark.postgres
def test_a_database_that_applied_the_squashed_chain_has_nothing_to_apply(db):
    with scratch_database() as name:
        assert manage(name, "migrate", "--noinput").returncode == 0
        for old in SQUASHED:
            run_sql(
                name,
                "INSERT INTO django_migrations (app, name, applied) VALUES ('runs', %s, now())",
                [old],
            )
        check = manage(name, "migrate", "--check", "--noinput")
        assert check.returncode == 0, check.stdout + check.stderr
        zero = manage(name, "migrate", "runs", "zero", "--noinput")
        assert zero.returncode == 0, zero.stderr
        assert not OWN_TABLES & catalog(name)["tables"]
        assert manage(name, "migrate", "--noinput").returncode == 0


@pytest.mark.postgres
def test_a_partial_migrate_of_a_fresh_database_succeeds_and_schedules_once_complete(db):
    """`migrate django_q` first, or `migrate runs 0001`: the schedules wait for the tables
    they note their first scheduling in, instead of failing the migrate after it applied."""
    with scratch_database() as name:
        for step in (("django_q",), ("runs", "0001")):
            done = manage(name, "migrate", *step, "--noinput")
            assert done.returncode == 0, done.stderr
        assert run_sql(name, "SELECT count(*) FROM django_q_schedule") == [(0,)]
        assert manage(name, "migrate", "--noinput").returncode == 0
        assert run_sql(name, "SELECT name FROM tenderops_heartbeat") == [("monitor scheduled",)]


@contextmanager
def a_role_that_does_not_own_tender_runs(name: str) -> Iterator[tuple[str, str]]:
    """A role with every grant on the tables but not the owner's role: (name, its URL)."""
    role, password = f"tenderops_guest_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    # Roles belong to the server: made and dropped outside the test's transaction.
    run_sql("postgres", f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        run_sql(
            name,
            f"GRANT CREATE ON SCHEMA public TO {role};"
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};"
            f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
        )
        yield role, server_url(name, user=role, password=password)
    finally:
        run_sql(name, f"DROP OWNED BY {role}")
        run_sql("postgres", f"DROP ROLE {role}")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("migrated_to", "target"),
    [(("runs", "0003"), ("runs", "0002")), ((), ("runs", "zero"))],
    ids=["the-step-itself", "steps-before-it"],
)
def test_a_role_that_does_not_own_tender_runs_is_stopped_before_any_change(db, migrated_to, target):
    """Stopped before the plan's first step: `migrate runs zero` unapplied eight migrations
    (the running app lost its columns) before the step that needs the owner stopped it."""
    with scratch_database() as name:
        assert manage(name, "migrate", *migrated_to, "--noinput").returncode == 0
        before = catalog(name)
        with a_role_that_does_not_own_tender_runs(name) as (role, as_guest):
            result = manage(name, "migrate", *target, "--noinput", url=as_guest)
            assert result.returncode != 0
            assert "not the owner of tender_runs" in result.stderr
            # The owner is a superuser here: granting its role would make the role one.
            assert "Run this migrate as postgres" in result.stderr
            assert f"GRANT postgres TO {role}" not in result.stderr
            assert "Nothing was changed" in result.stderr
            assert catalog(name) == before


@pytest.mark.postgres
def test_the_fingerprint_migration_keeps_unchanged_runs_unchanged(make_run):
    """0011: an observation still matching its run the old way gets the new fingerprint (no
    change counted); one whose run changed since keeps its value (the change is seen)."""
    fingerprints = import_module("runs.migrations.0011_fingerprints_as_chained_hashes")
    still, changed = make_run(progress=0.25, message="提取中..."), make_run(progress=0.5)
    observe_active_runs()

    def stored() -> dict[str, str]:
        return dict(RunObservation.objects.values_list("run_id", "fingerprint"))

    new = stored()
    with connection.cursor() as cursor:  # the observations as the old code left them
        cursor.execute(
            f"UPDATE tenderops_run_observation AS o SET fingerprint = {fingerprints.OLD} "
            "FROM tender_runs AS r WHERE r.id = o.run_id"
        )
    old = stored()
    TenderRun.objects.filter(pk=changed.pk).update(progress=0.75)
    with connection.schema_editor() as editor:
        fingerprints.forwards(None, editor)
    assert stored() == {still.pk: new[still.pk], changed.pk: old[changed.pk]}
    assert old[still.pk] != new[still.pk]
    assert observe_active_runs().changed == 1


@pytest.mark.postgres
def test_the_running_since_migration_starts_running_runs_from_their_start(make_run):
    """0013: runs running at the upgrade keep the maximum runtime they had (from their
    start); pending ones start empty, for the observation that sees them picked up."""
    running_since = import_module("runs.migrations.0013_observation_running_since")
    running, pending = make_run(), make_run(status="pending")
    observe_active_runs()
    RunObservation.objects.update(running_since=None)  # as the column is added
    with connection.cursor() as cursor:
        cursor.execute(running_since.RUNNING_SINCE_START)
    stored = dict(RunObservation.objects.values_list("run_id", "running_since"))
    assert stored == {running.pk: running.started_at, pending.pk: None}


@pytest.mark.postgres
def test_a_backends_own_fillfactor_is_kept_and_not_taken_back(db):
    with scratch_database() as name:
        run_sql(name, LIVE_SCHEMA.read_text())
        run_sql(name, "ALTER TABLE tender_runs SET (fillfactor = 70)")
        assert manage(name, "migrate", "--noinput").returncode == 0
        assert catalog(name)["tender_runs_options"] == ["fillfactor=70"]
        assert manage(name, "migrate", "runs", "zero", "--noinput").returncode == 0
        assert catalog(name)["tender_runs_options"] == ["fillfactor=70"]
