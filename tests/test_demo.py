"""`make demo` end to end: the script serves the admin and its cluster fixes the stuck runs."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.processes import start, wait_until

SEEDED_STUCK = 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_demo_serves_the_admin_and_its_cluster_fixes_stuck_runs(tmp_path):
    port = free_port()
    database = tmp_path / "demo.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
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
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C does
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    log = (tmp_path / "demo.log").read_text()
    assert "Admin login: admin / " in log
    assert "Stopped." in log
    assert login_page_status(port) is None
