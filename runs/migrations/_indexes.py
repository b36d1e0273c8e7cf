"""Indexes on the live ``tender_runs``, for the migrations that add them (0003, 0005).

CONCURRENTLY on PostgreSQL, so the table keeps taking writes while they build; repeatable (an
index left INVALID by an interrupted build is dropped and built again, one that exists is
kept); and both directions first check that the role may alter the table (it must own it)
and otherwise stop, changing nothing. Elsewhere (the SQLite demo) plain CREATE/DROP INDEX.

The builds run without the role's ``statement_timeout``: a limit meant for the backend's
queries cancelled each build (minutes on a large table), leaving an INVALID index that every
migrate built again into the same timeout. The role's ``lock_timeout`` stays: a build waiting
behind a long transaction holds a lock that the backend's own DDL, and then its writes, would
queue behind; cancelled, migrate says so in one line, and a later run finishes the build.
"""

from contextlib import contextmanager

from django.db import connections

TABLE = "tender_runs"
FILLFACTOR = 90  # tenderops' own (0003): room on each page for a run's next version


@contextmanager
def without_statement_timeout(schema_editor):
    schema_editor.execute("SET statement_timeout = 0")
    try:
        yield
    finally:
        schema_editor.execute("RESET statement_timeout")


def require_owner(schema_editor, doing):
    """Stop before any change unless the role may alter (index, set options on) the table."""
    _require_owner(schema_editor.connection, doing)


def _require_owner(connection, doing):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE'), relowner::regrole::text, "
            "current_user, (SELECT rolsuper FROM pg_roles WHERE oid = relowner) "
            "FROM pg_class WHERE oid = to_regclass(%s)",
            [TABLE],
        )
        row = cursor.fetchone()
    if row is None:  # not there yet: 0001 creates it, owned by this role
        return
    allowed, owner, role, superuser = row
    if allowed:
        return
    if superuser:
        # Granting a superuser's role would make this role one (SET ROLE).
        advice = (
            f"Run this migrate as {owner}; then give {role} its grants on tenderops' tables "
            f"(GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role})."
        )
    else:
        # Not "run it as the owner": the tables this role already made are its own, which
        # the owner may not touch (permission denied for table django_migrations).
        advice = (
            f"Let {role} act as the owner for this migrate: GRANT {owner} TO {role}; run "
            f"migrate again as {role}; then, if you wish, REVOKE {owner} FROM {role} (the "
            "app itself needs no more than its grants)."
        )
    raise RuntimeError(
        f"Cannot {doing}: the database role {role} is not the owner of {TABLE} (owned by "
        f"{owner}). Nothing was changed. {advice}"
    )


# The steps that need tender_runs' owner, by migration and direction (True: backwards).
OWNER_STEPS = {
    ("0003_tender_runs_indexes", False): "add tenderops' indexes to tender_runs",
    ("0003_tender_runs_indexes", True): "remove tenderops' indexes from tender_runs",
    ("0005_pending_index", False): "add tenderops' indexes to tender_runs",
    ("0005_pending_index", True): "remove tenderops' indexes from tender_runs",
    ("0007_stats_snapshot", True): "take back tenderops' tables",
}


def require_owner_before_the_plan(sender, using, plan=None, **kwargs):
    """pre_migrate: a plan with a step that needs the owner stops before its first step, not
    at that step (``migrate runs zero`` unapplied eight migrations, leaving the running app
    without its columns, and then stopped)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    for migration, backwards in plan or ():
        doing = OWNER_STEPS.get((migration.name, backwards))
        if migration.app_label == "runs" and doing:
            _require_owner(connection, doing)
            return


def index_validity(schema_editor, name):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def is_postgresql(schema_editor):
    return schema_editor.connection.vendor == "postgresql"


def add_concurrently(apps, schema_editor, indexes):
    model = apps.get_model("runs", "TenderRun")
    if not is_postgresql(schema_editor):
        for index in indexes:
            schema_editor.add_index(model, index)
        return
    require_owner(schema_editor, "add tenderops' indexes to tender_runs")
    with without_statement_timeout(schema_editor):
        for index in indexes:
            valid = index_validity(schema_editor, index.name)
            if valid:
                continue
            if valid is False:
                schema_editor.remove_index(model, index, concurrently=True)
            schema_editor.add_index(model, index, concurrently=True)


def drop_concurrently(apps, schema_editor, indexes):
    quote = schema_editor.quote_name
    if not is_postgresql(schema_editor):
        for index in indexes:
            schema_editor.execute(f"DROP INDEX IF EXISTS {quote(index.name)}")
        return
    require_owner(schema_editor, "remove tenderops' indexes from tender_runs")
    with without_statement_timeout(schema_editor):
        for index in indexes:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(index.name)}")


def fillfactor(schema_editor) -> str | None:
    """``tender_runs``' fillfactor option as set, or None."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT option_value FROM pg_options_to_table("
            "(SELECT reloptions FROM pg_class WHERE oid = %s::regclass)) "
            "WHERE option_name = 'fillfactor'",
            [TABLE],
        )
        row = cursor.fetchone()
    return row[0] if row else None
