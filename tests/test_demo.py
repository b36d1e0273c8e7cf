"""`make demo` end to end: the script serves the admin and its cluster fixes the stuck runs."""

import contextlib
import os
import signal
import sqlite3
import sys
import urllib.request
from pathlib import Path

from tests.processes import free_port, start, wait_until

SEEDED_STUCK = 12


def login_page_status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as reply:
            return reply.status
    except OSError:
        return None


def runs_failed_by_schedule(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=5) as conn:
        try:
            row = conn.execute(
                "SELECT coalesce(sum(affected_count), 0) FROM tenderops_maintenance_action "
                "WHERE actor = 'schedule' AND kind = 'fail_stuck'"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return row[0]


def actions_finished_before_they_started(database: Path) -> int:
    with sqlite3.connect(database, timeout=5) as conn:
        query = "SELECT count(*) FROM tenderops_maintenance_action WHERE finished_at < started_at"
        return conn.execute(query).fetchone()[0]


def demo_processes(port: int) -> list[int]:
    """The live processes of the demo on ``port``, found by the environment it was given."""
    marker = f"DEMO_PORT={port}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def test_demo_serves_the_admin_and_its_cluster_fixes_stuck_runs(tmp_path):
    port = free_port()
    database = tmp_path / "demo.sqlite3"
    env = {
        "DEMO_DATABASE_URL": f"sqlite:///{database}",
        # An operator's shell pointing at production: the demo must not go there.
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/production",
        "DEMO_PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    demo = start(["bash", "scripts/demo"], env, tmp_path / "demo.log")
    try:
        wait_until(lambda: login_page_status(port) == 200, timeout=120, what="the admin login page")
        wait_until(
            lambda: runs_failed_by_schedule(database) == SEEDED_STUCK,
            timeout=150,
            what="the demo's cluster to fail the seeded stuck runs",
        )
        assert len(demo_processes(port)) > 3  # the script, the server and the cluster's
        # What an impatient operator does: Ctrl-C, and Ctrl-C again.
        os.killpg(demo.pid, signal.SIGINT)
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=30)
    finally:
        left_running = demo_processes(port)
        for pid in left_running:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert left_running == []
    assert actions_finished_before_they_started(database) == 0
    log = (tmp_path / "demo.log").read_text()
    assert "Admin login: admin / " in log
    password = log.split("Admin login: admin / ")[1].split()[0]
    assert f"/admin/   admin / {password}   (Ctrl-C" in log  # again, once all has started
    assert f"Ignoring DATABASE_URL: the demo runs on sqlite:///{database}." in log
    assert "Demo workers: 3 live runs wrote progress" in log  # the stand-ins started
    assert "Stopped." in log
    assert login_page_status(port) is None


def test_the_demo_refuses_a_database_other_than_sqlite(tmp_path):
    env = {
        "DEMO_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    demo = start(["bash", "scripts/demo"], env, tmp_path / "demo.log")
    assert demo.wait(timeout=30) == 2
    assert "DEMO_DATABASE_URL must be sqlite:///PATH" in (tmp_path / "demo.log").read_text()
