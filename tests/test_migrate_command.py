"""``migrate`` on a live database: index builds past a role's statement limit but within its
lock limit, two at once taking turns, and one line when it cannot go on."""

import os
import subprocess
import sys
import time

import psycopg
import pytest

from runs.management.commands.migrate import MIGRATE_LOCK
from tests.conftest import LIVE_SCHEMA, REPO
from tests.databases import manage, run_sql, scratch_database, server_url
from tests.processes import run_in_repo
from tests.test_migrations import MIGRATIONS, OWN_RUN_INDEXES, catalog


@pytest.mark.postgres
@pytest.mark.parametrize("limit", ["statement_timeout", "lock_timeout"])
def test_an_index_build_waiting_for_a_worker_outlasts_a_statement_limit_not_a_lock_limit(db, limit):
    """A DBA's statement_timeout cancelled each CONCURRENTLY build, leaving an INVALID index
    every migrate built again into the same timeout (the deployment attacker): the build now
    outlasts it. A lock_timeout still cancels a build kept waiting (waiting, it would hold
    up the backend's DDL and the writes behind that: the reviewer), in one line; the next
    migrate, the worker's transaction over, finishes it."""
    with scratch_database() as name:
        run_sql(name, LIVE_SCHEMA.read_text())
        run_sql(
            name,
            "INSERT INTO tender_projects (id, kb_id, name) VALUES ('tp_1', 'kb', 'p');"
            "INSERT INTO tender_runs (id, project_id, run_type, status) "
            "VALUES ('tr_1', 'tp_1', 'review', 'running')",
        )
        assert manage(name, "migrate", "runs", "0002", "--noinput").returncode == 0
        run_sql(name, f"ALTER DATABASE {name} SET {limit} = '2s'")
        with psycopg.connect(server_url(name)) as backend:  # a worker's open transaction
            backend.execute("UPDATE tender_runs SET progress = 0.5 WHERE id = 'tr_1'")
            migrate = start_manage(name, "migrate", "--noinput")
            try:
                waited = wait_until(name, BUILD_WAITING_FOR_THREE_SECONDS, migrate)
                backend.commit()
                _, errors = migrate.communicate(timeout=300)
            finally:
                migrate.kill()
        if limit == "statement_timeout":
            assert waited and migrate.returncode == 0, errors
        else:
            assert not waited and migrate.returncode == 3, errors
            assert "lock timeout" in errors and "Traceback" not in errors
            assert "a lock wait gave way" in errors
            again = manage(name, "migrate", "--noinput")
            assert again.returncode == 0, again.stderr
        invalid = run_sql(name, "SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        assert invalid == [(0,)]
        assert set(catalog(name)["indexes"]) >= OWN_RUN_INDEXES


BUILD_WAITING_FOR_THREE_SECONDS = (
    "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%%' "
    "AND wait_event_type = 'Lock' AND now() - query_start > interval '3 seconds' "
    "AND datname = current_database()"
)


def start_manage(database: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": server_url(database)}
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(database: str, sql: str, process: subprocess.Popen, tries: int = 1200) -> bool:
    """Whether ``sql`` finds a row while ``process`` still runs (bounded: ``tries`` polls)."""
    for _ in range(tries):
        if process.poll() is not None:
            return False
        if run_sql(database, sql):
            return True
        time.sleep(0.1)  # polling a condition, bounded; not a synchronisation by time
    return False


@pytest.mark.postgres
def test_a_migrate_that_cannot_go_on_says_why_in_one_line(db):
    with scratch_database() as name:
        run_sql(name, LIVE_SCHEMA.read_text())
        run_sql(name, "ALTER TABLE tender_runs DROP COLUMN message")
        refused = manage(name, "migrate", "--noinput")
        unreachable = manage(name, "migrate", url=server_url(f"{name}_not_there"))
    assert refused.returncode == 1 and "lacks the column(s) message" in refused.stderr
    assert unreachable.returncode == 3 and "the database failed" in unreachable.stderr
    for result in (refused, unreachable):
        assert "Traceback" not in result.stderr and "stays applied" in result.stderr


@pytest.mark.postgres
def test_two_migrates_at_once_take_turns(db):
    """Two hosts deploying together: one died on "relation already exists" or a deadlock,
    and django_migrations got rows twice (the deployment attacker). Both are held at the
    lock until both wait there, then let go together."""
    with scratch_database() as name:
        with psycopg.connect(server_url(name), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
            first, second = (start_manage(name, "migrate", "--noinput") for _ in range(2))
            try:
                assert wait_until(name, TWO_WAITING_AT_THE_LOCK, first)
                holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])
                outcomes = [process.communicate(timeout=300) for process in (first, second)]
            finally:
                first.kill()
                second.kill()
        assert (first.returncode, second.returncode) == (0, 0), outcomes
        twice = "SELECT app, name FROM django_migrations GROUP BY 1, 2 HAVING count(*) > 1"
        assert run_sql(name, twice) == []
        assert catalog(name)["runs_migrations"] == MIGRATIONS


TWO_WAITING_AT_THE_LOCK = (  # each has tried it, and found it taken
    "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%%pg_try_advisory_lock%%' "
    "AND pid <> pg_backend_pid() AND datname = current_database() HAVING count(*) = 2"
)


@pytest.mark.postgres
def test_a_plan_or_a_check_does_not_wait_for_another_migrate(db):
    with scratch_database() as name:
        assert manage(name, "migrate", "--noinput").returncode == 0
        with psycopg.connect(server_url(name), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK])
            checked = manage(name, "migrate", "--check")
            planned = manage(name, "migrate", "--plan")
    assert checked.returncode == 0 and planned.returncode == 0
    assert "Another migrate" not in checked.stdout + planned.stdout


def test_a_sqlite_file_in_a_new_directory_is_made_or_said_in_one_line(tmp_path):
    # README's "try them" in a fresh clone: sqlite:///var/try.sqlite3 where var/ is not yet.
    def migrate(path):
        url = f"sqlite:///{path}"
        env = {**os.environ, "DJANGO_DEBUG": "true", "DATABASE_URL": url}
        return run_in_repo([sys.executable, "manage.py", "migrate", "--noinput"], env)

    made = migrate(tmp_path / "var" / "try.sqlite3")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "var" / "try.sqlite3").is_file()
    # Two directories missing: not made (a typo's), and said in one line by the checks'
    # first query, which ran before migrate's own handling.
    unopenable = migrate(tmp_path / "typo" / "var" / "try.sqlite3")
    assert unopenable.returncode == 3
    assert "Traceback" not in unopenable.stderr
    assert "unable to open database file" in unopenable.stderr.strip().splitlines()[-1]
