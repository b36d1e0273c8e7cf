"""A database outage under a running cluster: the failed tick shows, the cluster survives,
and the next tick after the database is back fixes the stuck runs."""

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO
from tests.processes import free_port, run_in_repo, start, stop, wait_until

pytestmark = pytest.mark.postgres

PG_BIN = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent


def as_postgres(*args: str) -> None:
    command = list(args)
    if os.geteuid() == 0:  # initdb and the server refuse to run as root
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


class PrivateServer:
    """A PostgreSQL server of this test's own: its own data folder and port."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: the postgres user cannot enter root's private folders.
        self.root = Path(tempfile.mkdtemp(prefix="tenderops-outage-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.data / "server.log"),
            "-o",
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        )

    def stop(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def execute(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []


STUCK_SQL = """
INSERT INTO tender_projects (id, kb_id, name) VALUES ('tp_{label}', 'kb', 'p')
ON CONFLICT DO NOTHING;
INSERT INTO tender_runs (id, project_id, run_type, status, started_at)
SELECT 'tr_{label}_' || g, 'tp_{label}', 'risks', 'running', now() - interval '1 hour'
FROM generate_series(1, 5) AS g;
"""


def failed_count(server: PrivateServer, label: str) -> int:
    try:
        return server.execute(
            f"SELECT count(*) FROM tender_runs WHERE id LIKE 'tr_{label}_%' AND status = 'failed'"
        )[0][0]
    except psycopg.OperationalError:
        return -1


HEALTH_PROBE = """
import django; django.setup()
from django.test import Client
bearer = "Bearer outage-token-16ch"
response = Client().get("/api/apps/tender/admin/health", HTTP_AUTHORIZATION=bearer)
print(response.status_code)
"""


def health_status(env: dict[str, str]) -> int:
    done = run_in_repo([sys.executable, "-c", HEALTH_PROBE], env, timeout=60)
    return int(done.stdout.strip().splitlines()[-1])


def test_cluster_survives_a_database_outage_and_catches_up(tmp_path):
    server = PrivateServer()
    server.start()
    env = {
        **os.environ,
        "DATABASE_URL": server.url,
        "DJANGO_SETTINGS_MODULE": "tenderops.settings",
        "TENDEROPS_API_TOKEN": "outage-token-16ch",
        "DJANGO_ALLOWED_HOSTS": "testserver",
    }
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=REPO,
            env=env,
            check=True,
            timeout=300,
        )
        server.execute(STUCK_SQL.format(label="before"))
        log = tmp_path / "qcluster.log"
        cluster = start([sys.executable, "manage.py", "qcluster"], env, log)
        try:
            wait_until(
                lambda: failed_count(server, "before") == 5, timeout=150, what="the first tick"
            )
            assert health_status(env) == 200

            server.stop()
            wait_until(
                lambda: (
                    "connection"
                    in log.read_text(errors="replace").lower().split("q cluster", 1)[-1]
                    and "error" in log.read_text(errors="replace").lower()
                ),
                timeout=150,
                what="the cluster to report the failed tick",
            )
            assert cluster.poll() is None, "the cluster died with the database"
            assert health_status(env) == 503

            server.start()
            server.execute(STUCK_SQL.format(label="after"))
            wait_until(
                lambda: failed_count(server, "after") == 5,
                timeout=150,
                what="the next tick after the database came back",
            )
            assert cluster.poll() is None
            assert health_status(env) == 200
        finally:
            assert stop(cluster) is not None, "the cluster had to be killed"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
