"""The shape tenderops needs of the tender backend's ``tender_runs``, beyond its columns being
there: times with a time zone, and unbounded text where tenderops writes.

A ``started_at`` without a time zone, read in a database time zone other than UTC, made a run
started a second before look five hours old (it was failed as silent at once), or made a run
silent for hours look as if it had not started yet. A ``message`` of ``varchar(200)`` made
every failing with a longer message fail. Checked by migration 0001 on adoption, by ``manage.py
check --database default`` (and ``migrate``) at any time, and once per process before
runs are judged or failed, where a table changed since would otherwise do its damage.
"""

from __future__ import annotations

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "tender_runs"
TIME_COLUMNS = ("started_at", "finished_at")
WRITTEN_TEXT_COLUMNS = ("status", "message", "error")  # tenderops writes these when failing
TIME_TYPE = "timestamp with time zone"
TEXT_TYPES = ("text", "character varying")  # format_type() of varchar without a length

_confirmed: set[str] = set()  # the databases (by alias) found in shape by this process


def shape_problems(connection: BaseDatabaseWrapper) -> list[str]:
    """What is wrong with ``tender_runs``' column types (PostgreSQL; nothing elsewhere)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [TABLE],
        )
        types = dict(cursor.fetchall())
    problems = [
        f"{TABLE}.{column} is {types[column]}, not {TIME_TYPE}: runs' ages would be misjudged"
        for column in TIME_COLUMNS
        if column in types and types[column] != TIME_TYPE
    ]
    problems += [
        f"{TABLE}.{column} is {types[column]}, not text: what tenderops writes there may not fit"
        for column in WRITTEN_TEXT_COLUMNS
        if column in types and types[column] not in TEXT_TYPES
    ]
    return problems


def ensure_shape(connection: BaseDatabaseWrapper) -> None:
    """Refuse to go on (nothing changed) while ``tender_runs`` is not in the shape tenderops
    needs; once found in shape, the process does not ask again."""
    if connection.alias in _confirmed:
        return
    problems = shape_problems(connection)
    if problems:
        raise NotSupportedError(f"{'; '.join(problems)}. {ADVICE}")
    _confirmed.add(connection.alias)


ADVICE = (
    "tenderops fails no run until the tender backend's table has the types of runs/tender_live.sql"
)


# The comment migration 0001 leaves on a tender_runs it created (tests, demos, or a
# DATABASE_URL that names the wrong database: the monitor would then watch an empty table).
CREATED_HERE = "created empty by tenderops' migrate: no tender backend's table was here"


def created_here(connection: BaseDatabaseWrapper) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [TABLE])
        return cursor.fetchone()[0] == CREATED_HERE
