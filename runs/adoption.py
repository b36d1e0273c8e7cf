"""The shape tenderops needs of the tender backend's ``tender_runs``, beyond its columns being
there: times with a time zone, unbounded text where tenderops writes, and values where every
run has one.

A ``started_at`` without a time zone, read in a database time zone other than UTC, made a run
started a second before look five hours old (it was failed as silent at once), or made a run
silent for hours look as if it had not started yet. A ``message`` of ``varchar(200)`` made
every failing with a longer message fail. Checked by migration 0001 on adoption, by ``manage.py
check --database default`` (and ``migrate``) at any time, and each time runs are failed
or listed as stuck, where a table changed since would otherwise do its damage (a quiet tick,
which finds nothing stuck, stays one statement).
"""

from __future__ import annotations

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper

from runs.limits import MAX_REASON_LENGTH
from runs.vocabulary import RunStatus

TABLE = "tender_runs"
ADVICE = (
    "tenderops fails no run until the tender backend's table has the types of runs/tender_live.sql"
)
TIME_COLUMNS = ("started_at", "finished_at")
# What tenderops writes when failing, and the longest text it may write there.
WRITTEN_TEXT_COLUMNS = {
    "status": len(RunStatus.FAILED),
    "message": MAX_REASON_LENGTH,
    "error": MAX_REASON_LENGTH,
}
# Columns the backend's schema declares NOT NULL and tenderops reads on every run: a run without
# a start cannot be judged, and one without a status or a type has no kind to count it under
# (a table altered to allow them: the runs list, /metrics and the stats answered 500).
REQUIRED_COLUMNS = ("project_id", "run_type", "status", "started_at")
# Each column's type by what it is, not by its name: a precision (timestamptz(3)), a domain
# over text, citext or a long enough varchar are all fine.
COLUMN_TYPES = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod),
           base.oid = 'timestamptz'::regtype,
           base.typcategory = 'S',
           CASE WHEN base.oid IN ('varchar'::regtype, 'bpchar'::regtype)
                     AND coalesce(nullif(t.typtypmod, -1), a.atttypmod) > 4
                THEN coalesce(nullif(t.typtypmod, -1), a.atttypmod) - 4 END,
           a.attnotnull OR t.typnotnull
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
"""


def shape_problems(connection: BaseDatabaseWrapper) -> list[str]:
    """What is wrong with ``tender_runs``' column types (PostgreSQL; nothing elsewhere)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(COLUMN_TYPES, [TABLE])
        columns = {name: row for name, *row in cursor.fetchall()}
    problems = [
        f"{TABLE}.{name} is {columns[name][0]}, not timestamp with time zone: runs' ages "
        "would be misjudged"
        for name in TIME_COLUMNS
        if name in columns and not columns[name][1]
    ]
    problems += [
        f"{TABLE}.{name} allows NULL, which the tender backend's schema does not: tenderops "
        "reads a value there on every run"
        for name in REQUIRED_COLUMNS
        if name in columns and not columns[name][4]
    ]
    for name, longest in WRITTEN_TEXT_COLUMNS.items():
        if name not in columns:
            continue
        shown, _, is_text, max_length, _ = columns[name]
        if not is_text or (max_length is not None and max_length < longest):
            problems.append(
                f"{TABLE}.{name} is {shown}: tenderops writes text of up to {longest} "
                "characters there"
            )
    return problems


def ensure_shape(connection: BaseDatabaseWrapper) -> None:
    """Refuse to go on (nothing changed) while ``tender_runs`` is not in the shape tenderops
    needs. Asked each time (0.16 ms at 10 M runs), not once per process: a table altered
    under a running cluster was judged by the shape it had when the process started."""
    problems = shape_problems(connection)
    if problems:
        raise NotSupportedError(f"{'; '.join(problems)}. {ADVICE}")


# The comment migration 0001 leaves on a tender_runs it created (tests, demos, or a
# DATABASE_URL that names the wrong database: the monitor would then watch an empty table).
CREATED_HERE = "created empty by tenderops' migrate: no tender backend's table was here"


def created_here(connection: BaseDatabaseWrapper) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [TABLE])
        return cursor.fetchone()[0] == CREATED_HERE
