"""tenderops' indexes on the live ``tender_runs``, built CONCURRENTLY on PostgreSQL, and its
fillfactor.

Non-atomic, so the live table keeps taking writes while the indexes build. Every step can be
repeated: an index left INVALID by an interrupted build is dropped and built again, one that
already exists is kept, and reversing drops only what exists. Both directions first check
that the role may alter ``tender_runs`` (it must own it) and otherwise stop, changing nothing.

``fillfactor = 90`` leaves a tenth of each newly written page free. A run is written several
times in its life (progress, message, status); with room on its page the new row version stays
there (a HOT update that touches no index) instead of landing on a cold page found through the
free-space map, read and written in full to the WAL after each checkpoint. Only pages written
from then on are affected; the change takes a lock that blocks neither reads nor writes and
rewrites nothing. Reversing restores PostgreSQL's default.
"""

from django.db import migrations, models

TABLE = "tender_runs"
FILLFACTOR = 90
INDEXES = [
    models.Index(
        fields=["started_at"], name="tenderops_running_started", condition=models.Q(status="running")
    ),
    models.Index(fields=["status", "started_at"], name="tenderops_status_started"),
    models.Index(fields=["started_at", "id"], name="tenderops_started_id"),
]


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


def forwards(apps, schema_editor):
    model = apps.get_model("runs", "TenderRun")
    if schema_editor.connection.vendor != "postgresql":
        for index in INDEXES:
            schema_editor.add_index(model, index)
        return
    require_owner(schema_editor, "add tenderops' indexes to tender_runs")
    for index in INDEXES:
        valid = index_validity(schema_editor, index.name)
        if valid:
            continue
        if valid is False:
            schema_editor.remove_index(model, index, concurrently=True)
        schema_editor.add_index(model, index, concurrently=True)
    schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = {FILLFACTOR})")


def backwards(apps, schema_editor):
    quote = schema_editor.quote_name
    if schema_editor.connection.vendor != "postgresql":
        for index in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {quote(index.name)}")
        return
    require_owner(schema_editor, "remove tenderops' indexes from tender_runs")
    schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")
    for index in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(index.name)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runs", "0002_audit_log")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="tenderrun", index=index) for index in INDEXES
            ],
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
