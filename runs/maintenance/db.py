"""The database's clock and the session settings some statements need.

Time is always the database's, never the app server's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Now
from django.utils.dateparse import parse_datetime
from psycopg import ClientCursor

from runs.models import TenderRun


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def now_sql() -> tuple[str, list[Any]]:
    """The database's current-time expression, as Django's ``Now()`` compiles it here."""
    compiler = TenderRun.objects.none().query.get_compiler(connection=connection)
    sql, params = compiler.compile(Now())
    return sql, list(params)


# Compiled SQL by (database alias, caller's key): building and compiling a queryset costs
# milliseconds of Python (cProfile: about 3 ms of a 10 ms quiet tick, most of a /metrics
# scrape) for SQL that only changes with the key. The key must name everything the SQL
# depends on (a policy, a setting); the database's clock stays in the SQL (``Now()``).
_COMPILED: dict[Hashable, tuple[str, tuple]] = {}
_COMPILED_SIZE = 256


def compiled(key: Hashable, build: Callable[[], QuerySet]) -> tuple[str, tuple]:
    """``build()``'s SQL and params, compiled once per ``key`` (bounded; cleared when full)."""
    full_key = (connection.alias, key)
    if full_key not in _COMPILED:
        if len(_COMPILED) >= _COMPILED_SIZE:
            _COMPILED.clear()
        sql, params = build().query.sql_with_params()
        _COMPILED[full_key] = (sql, tuple(params))
    return _COMPILED[full_key]


def fetch_compiled(key: Hashable, build: Callable[[], QuerySet]) -> list[tuple]:
    """The rows of ``build()`` (a ``values_list``), through ``compiled``: plain database
    values (the caller converts what a backend returns as text, as SQLite does datetimes)."""
    sql, params = compiled(key, build)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def aware(value: datetime | str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else value
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def db_now() -> datetime:
    sql, params = now_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return aware(cursor.fetchone()[0])


def minutes_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 60, 1)


@contextmanager
def local_settings(**settings: str) -> Iterator[None]:
    """PostgreSQL settings for the statements inside only, restored after them.

    The stats page needs two. ``jit = off``: compiling a whole-table aggregate costs about
    0.4 s of CPU and saves less. ``enable_seqscan = off`` for the windows of recent days: they
    are a few per cent of a time-ordered heap, hence of its pages, but bitmap-scan costing
    ignores that order, and with the default ``random_page_cost`` the planner scans the whole
    table instead (the 30-day window at 10 M runs: 1.1 s, against 0.4 s by its index).
    """
    if not is_postgresql():
        yield
        return
    names = list(settings)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(['current_setting(%s)'] * len(names))}", names)
        before = dict(zip(names, cursor.fetchone(), strict=True))
        set_local(cursor, settings)
        yield
        # On an error the savepoint's rollback restores them instead.
        set_local(cursor, before)


# How long a routine a machine calls (the monitor's tick, the API, health, /metrics, the
# watchdog) waits for a lock another session holds on a table it reads (the backend's ALTER
# TABLE, a LOCK TABLE): then it gives way, says so and is tried again, instead of waiting
# past its caller's patience (the next tick, gunicorn's 30 s, cron's next watchdog).
LOCK_WAIT = "10s"
LOCK_WAIT_SETTING = f"set_config('lock_timeout', '{LOCK_WAIT}', true)"  # a prelude's part


def limit_lock_waits() -> None:
    """For the rest of this connection's session: wait at most LOCK_WAIT for a lock."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [LOCK_WAIT])


def set_local(cursor: Any, settings: Mapping[str, str]) -> None:
    """Set ``settings`` for this transaction only, in one round trip."""
    calls = ", ".join("set_config(%s, %s, true)" for _setting in settings)
    cursor.execute(f"SELECT {calls}", [part for setting in settings.items() for part in setting])


def execute_after(cursor: Any, prelude: str, statement: str, params: Sequence[Any]) -> None:
    """Execute ``prelude`` (a SELECT setting this transaction's settings) and then ``statement``
    in one round trip, as one transaction (outside a transaction, PostgreSQL's implicit one),
    the cursor left on ``statement``'s result. ``params`` are both's, in order.

    Statements sent together are planned one after the other, so ``statement`` is planned
    with the settings ``prelude`` set. A separate round trip for the settings, and BEGIN
    and COMMIT for a transaction of its own, cost about 0.45 ms of a 5 ms monitor tick.
    It needs client-side binding (psycopg 3 with Django's default, ``server_side_binding``
    off); otherwise it executes them one after the other, in a transaction.
    """
    if isinstance(cursor.cursor, ClientCursor):
        cursor.execute(f"{prelude};\n{statement}", params)
        cursor.nextset()
        return
    split = prelude.count("%s")
    with transaction.atomic():
        cursor.execute(prelude, params[:split])
        cursor.execute(statement, params[split:])


# SQLSTATEs of a transaction that gave up because others held what it needed: a deadlock,
# a serialisation failure, a lock wait past lock_timeout. Trying again is the answer.
GAVE_WAY = {"40P01", "40001", "55P03"}


def gave_way(error: BaseException) -> bool:
    """Whether ``error`` (a DatabaseError) is a transaction that gave way to others."""
    return getattr(error.__cause__, "sqlstate", None) in GAVE_WAY


def commit_without_flush_wait() -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL).

    Safe for a prune batch: a crash can only undo the last batches whole, their deletes with
    their audit counts, which leaves expired runs for the next prune and an audit that still
    matches the table. The next synchronous commit flushes them anyway. The batch then no
    longer waits for each flush in turn, and the WAL writer flushes while it deletes.
    """
    if is_postgresql():
        with connection.cursor() as cursor:
            set_local(cursor, {"synchronous_commit": "off"})


def count_at_most(queryset: QuerySet, cap: int) -> int:
    """How many rows ``queryset`` holds, counted to ``cap`` by a bounded read (a selection
    may be "select all" on a table of millions)."""
    return len(queryset.order_by().values_list("pk", flat=True)[:cap])
