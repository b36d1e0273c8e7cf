"""Helpers for tests that run tenderops in real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

from tests.conftest import REPO


def current_database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database)."""
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    host, port = s["HOST"] or "localhost", s["PORT"] or 5432
    return f"postgres://{s['USER']}{password}@{host}:{port}/{s['NAME']}"


def run_in_repo(
    args: list, env: dict[str, str] | None = None, *, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``args`` run to its end in the repository, without a terminal, its output captured."""
    return subprocess.run(
        args,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A port free a moment ago, for a server that must be told its port before it listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


@contextmanager
def interruptible() -> Iterator[None]:
    """Children started meanwhile take Ctrl-C as from a terminal. A test run started as a
    background job (``make test &`` in a script) ignores SIGINT, every child inherits that,
    and a shell cannot trap a signal ignored when it started (the demo's Ctrl-C test)."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if not ignored or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def start(args: list[str], env: dict[str, str], log_path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the caller's stop()
    with interruptible():
        return subprocess.Popen(
            args,
            cwd=REPO,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, *, grace: float = 30) -> int | None:
    """TERM the main process (as systemd's KillMode=mixed does; a TERM to every process of
    django-q2's cluster can hang it); kill the whole group after ``grace`` seconds. Return
    the exit code if it stopped by itself, None if it had to be killed."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return None
    return process.returncode


@contextmanager
def qclusters(count: int, tmp_path, extra_env: dict[str, str] | None = None) -> Iterator[list]:
    env = {"DATABASE_URL": current_database_url(), **(extra_env or {})}
    processes = [
        start([sys.executable, "manage.py", "qcluster"], env, tmp_path / f"qcluster-{n}.log")
        for n in range(count)
    ]
    try:
        yield processes
    finally:
        codes = [stop(process) for process in processes]
        for process in processes:
            process.stdout and process.stdout.close()
        # The clusters must stop on TERM within the grace period, without a kill.
        assert codes == [0] * count, codes


def waiting_in_this_database(observer: psycopg.Connection) -> int:
    """Backends of this test's database waiting for a lock (another suite's are not ours)."""
    return observer.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    ).fetchone()[0]


@contextmanager
def refused_updates(table: str, condition: str = "true") -> Iterator[None]:
    """Updates of ``table``'s rows matching ``condition`` (SQL on OLD) raise, as a trigger of
    the backend's refusing a change would; the trigger is gone after."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused by the backend'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER refuse_update BEFORE UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({condition}) EXECUTE FUNCTION refuse_update()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER refuse_update ON {table}")
            cursor.execute("DROP FUNCTION refuse_update()")


@contextmanager
def statement_gate(
    table: str, event: str, number: int, after: int = 0, passes: str = ""
) -> Iterator[psycopg.Connection]:
    """Every ``event`` (INSERT, UPDATE, DELETE) statement on ``table`` but the first ``after``
    waits at a gate (a trigger that takes advisory lock ``number`` shared) while the yielded
    connection holds the lock: the caller waits for its participants to be there, then opens
    it by unlocking. Connections named ``passes`` (``application_name``) are never held.
    The trigger fires after the statement took its snapshot, before it reads a row."""
    held = f"current_setting('application_name') <> '{passes}'" if passes else "true"
    with connection.cursor() as cursor:
        # A sequence counts the statements that passed: nextval is not undone by a rollback.
        cursor.execute("CREATE SEQUENCE statement_gate_passed")
        cursor.execute(
            "CREATE FUNCTION statement_gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF {held} AND nextval('statement_gate_passed') > {after} THEN "
            f"PERFORM pg_advisory_lock_shared({number}); "
            f"PERFORM pg_advisory_unlock_shared({number}); END IF; RETURN NULL; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER statement_gate BEFORE {event} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION statement_gate()"
        )
    gate = psycopg.connect(current_database_url(), autocommit=True)
    gate.execute("SELECT pg_advisory_lock(%s)", [number])
    try:
        yield gate
    finally:
        gate.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS statement_gate ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS statement_gate()")
            cursor.execute("DROP SEQUENCE IF EXISTS statement_gate_passed")
