"""Indexes on the live ``tender_runs``, for the migrations that add them (0003, 0005).

CONCURRENTLY on PostgreSQL, so the table keeps taking writes while they build; repeatable (an
index left INVALID by an interrupted build is dropped and built again, one that exists is
kept); and both directions first check that the role may alter the table (it must own it)
and otherwise stop, changing nothing. Elsewhere (the SQLite demo) plain CREATE/DROP INDEX.
"""

TABLE = "tender_runs"


def require_owner(schema_editor, doing):
    """Stop before any change unless the role may alter (index, set options on) the table."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE'), relowner::regrole::text "
            "FROM pg_class WHERE oid = %s::regclass",
            [TABLE],
        )
        allowed, owner = cursor.fetchone()
    if not allowed:
        raise RuntimeError(
            f"Cannot {doing}: the database role is not the owner of {TABLE} (owned by {owner}). "
            f"Nothing was changed. Run this migrate once as {owner}."
        )


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
    for index in indexes:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(index.name)}")
