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
rewrites nothing. A fillfactor the backend set is kept (reversing takes back only tenderops'
own, restoring PostgreSQL's default).
"""

from django.db import migrations, models

from runs.migrations import _indexes

TABLE = _indexes.TABLE
FILLFACTOR = _indexes.FILLFACTOR
INDEXES = [
    models.Index(
        fields=["started_at"], name="tenderops_running_started", condition=models.Q(status="running")
    ),
    models.Index(fields=["status", "started_at"], name="tenderops_status_started"),
    models.Index(fields=["started_at", "id"], name="tenderops_started_id"),
]


def forwards(apps, schema_editor):
    _indexes.add_concurrently(apps, schema_editor, INDEXES)
    if _indexes.is_postgresql(schema_editor) and _indexes.fillfactor(schema_editor) is None:
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = {FILLFACTOR})")


def backwards(apps, schema_editor):
    if _indexes.is_postgresql(schema_editor):
        _indexes.require_owner(schema_editor, "remove tenderops' indexes from tender_runs")
        if _indexes.fillfactor(schema_editor) == str(FILLFACTOR):
            schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")
    _indexes.drop_concurrently(apps, schema_editor, INDEXES)


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
