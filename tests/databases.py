"""Throwaway PostgreSQL databases for tests that run `manage.py` in a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

from tests.processes import run_in_repo


def server_url(database: str, *, user: str | None = None, password: str | None = None) -> str:
    """The URL of ``database`` on the test's server, as the test's role or as ``user``."""
    s = connection.settings_dict
    if user is None:
        user, password = s["USER"], s["PASSWORD"]
    secret = f":{password}" if password else ""
    host, port = s["HOST"] or "localhost", s["PORT"] or 5432
    return f"postgres://{user}{secret}@{host}:{port}/{database}"


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"tenderops_scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(server_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_sql(database: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(server_url(database), autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def manage(database: str, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
    """``manage.py *args`` in a fresh process on ``database`` (or on ``url``)."""
    env = {**os.environ, "DATABASE_URL": url or server_url(database)}
    return run_in_repo([sys.executable, "manage.py", *args], env, timeout=300)
