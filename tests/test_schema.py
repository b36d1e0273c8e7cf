"""Adopting the live tables: migrate changes none of their columns, and the app reads them."""

import io
import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from runs.maintenance import fail_stuck_runs, prune_runs
from runs.models import Actor
from tests.conftest import LIVE_SCHEMA, REPO
from tests.databases import manage, run_sql, scratch_database

pytestmark = pytest.mark.postgres

TABLES = ("tender_projects", "tender_runs")


class RefusedAdoption(NamedTuple):
    stderr: str
    unchanged: bool  # the live tables' columns and constraints as before
    tables: list[str]  # the tables there afterwards


def refused_adoption(alteration: str) -> RefusedAdoption:
    """``migrate`` on the live schema changed by ``alteration`` (SQL), which it must refuse."""
    with scratch_database() as live:
        run_sql(live, LIVE_SCHEMA.read_text())
        run_sql(live, alteration)
        before = shape(live)
        result = manage(live, "migrate", "--noinput")
        assert result.returncode != 0
        tables = run_sql(live, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return RefusedAdoption(result.stderr, shape(live) == before, [name for (name,) in tables])


def shape(database: str) -> dict[str, list[tuple]]:
    """Columns (name, position, type, nullability, default, length) and constraints."""
    return {
        "columns": run_sql(
            database,
            "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
            "column_default, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = ANY(%s) ORDER BY 1, 3",
            [list(TABLES)],
        ),
        "constraints": run_sql(
            database,
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
            [list(TABLES)],
        ),
    }


def indexes(database: str) -> dict[str, str]:
    rows = run_sql(
        database,
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
        [list(TABLES)],
    )
    return dict(rows)


def test_the_repository_carries_the_live_schema_verbatim():
    """The copy in the repository is the product's own, which lies beside the checkout on a
    developer's machine only (../shared): skipped without it, as on a user's machine."""
    default = REPO.parent / "shared" / "schema" / "tender_live.sql"
    shared = Path(os.environ.get("TENDEROPS_LIVE_SCHEMA", default))
    if not shared.exists():
        pytest.skip("no ../shared beside this checkout (a user's machine)")
    assert LIVE_SCHEMA.read_text() == shared.read_text()


def test_migrate_adopts_live_tables_without_changing_them(db):
    with scratch_database() as live:
        run_sql(live, LIVE_SCHEMA.read_text())
        before, indexes_before = shape(live), indexes(live)
        run_sql(
            live,
            "INSERT INTO tender_projects (id, kb_id, name) VALUES ('tp_live', 'kb', '在线项目');"
            "INSERT INTO tender_runs (id, project_id, run_type, status, started_at, message, "
            "meta_json) VALUES ('tr_live', 'tp_live', 'risks', 'running', "
            "now() - interval '2 hours', '风险提取中...', '{\"k\": \"值\"}')",
        )

        migrated = manage(live, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        assert shape(live) == before
        after = indexes(live)
        assert {name: after[name] for name in indexes_before} == indexes_before
        assert {"tenderops_running_started", "tenderops_status_started"} <= set(after)

        again = manage(live, "migrate", "--noinput")
        assert again.returncode == 0 and shape(live) == before

        listed = manage(live, "cleanup_stuck_runs", "--dry-run", "--json")
        assert listed.returncode == 0, listed.stderr
        (run,) = json.loads(listed.stdout)["stuck_runs"]
        assert (run["id"], run["project_id"], run["kind"]) == ("tr_live", "tp_live", "risks")
        fixed = manage(live, "cleanup_stuck_runs", "--auto-fix", "--json")
        assert json.loads(fixed.stdout)["fixed_count"] == 1
        assert run_sql(live, "SELECT status, meta_json::text FROM tender_runs") == [
            ("failed", '{"k": "值"}')
        ]


def test_migrations_on_an_empty_database_create_the_live_shape(db):
    with scratch_database() as live, scratch_database() as empty:
        run_sql(live, LIVE_SCHEMA.read_text())
        assert manage(live, "migrate", "--noinput").returncode == 0
        result = manage(empty, "migrate", "--noinput")
        assert result.returncode == 0, result.stderr
        assert shape(empty) == shape(live)
        assert indexes(empty) == indexes(live)


def test_adopting_a_table_that_lacks_a_column_fails_clearly_and_changes_nothing(db):
    refused = refused_adoption("ALTER TABLE tender_runs DROP COLUMN progress")
    assert "lacks the column(s) progress" in refused.stderr
    assert refused.unchanged


def test_models_match_migrations(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.fixture
def large_table(transactional_db):
    """A table that autovacuum has seen, as a live one has (VACUUM cannot run in a test's
    transaction, hence transactional_db)."""
    call_command("seed_demo_runs", "--runs", "40000", "--stuck", "30", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tender_runs")


def plans_of(statements: list[str]) -> list[str]:
    """Each statement's plan. A statement sent after its prelude in one round trip
    (``db.execute_after``) is explained after the prelude has run, as it is planned."""
    plans = []
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            prelude, separator, statement = sql.partition(";\n")
            if separator and prelude.startswith("SELECT set_config("):
                cursor.execute(prelude)
                sql = statement
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def routine_statements(work) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        work()
    return [
        q["sql"]
        for q in captured.captured_queries
        if "tender_runs" in q["sql"] and not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]


@pytest.mark.parametrize(
    "work",
    [
        lambda: fail_stuck_runs(actor=Actor.CLI, dry_run=True),
        lambda: fail_stuck_runs(actor=Actor.CLI),
        lambda: prune_runs(actor=Actor.CLI, dry_run=True),
        # A batch is a small share of a large table (5,000 of millions in production).
        lambda: prune_runs(actor=Actor.CLI, batch_size=100),
    ],
    ids=["find-stuck", "fail-stuck", "prune-count", "prune-batches"],
)
def test_routines_use_indexes_not_sequential_scans(work, large_table):
    statements = routine_statements(work)
    assert statements
    for plan in plans_of(statements):
        assert "Seq Scan on tender_runs" not in plan, plan[:1500]
        assert "Index" in plan, plan[:1500]
