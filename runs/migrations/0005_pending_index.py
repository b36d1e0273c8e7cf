"""A partial index on the pending runs of ``tender_runs``, built CONCURRENTLY on PostgreSQL.

The observation of signs of life reads every active run: the running ones through
``tenderops_running_started`` (0003), the pending ones through this one, never the table.
Non-atomic like 0003, repeatable, and stopping before any change unless the role owns the
table.
"""

from django.db import migrations, models

from runs.migrations import _indexes

INDEX = models.Index(
    fields=["started_at"], name="tenderops_pending_started", condition=models.Q(status="pending")
)


def forwards(apps, schema_editor):
    _indexes.add_concurrently(apps, schema_editor, [INDEX])


def backwards(apps, schema_editor):
    _indexes.drop_concurrently(apps, schema_editor, [INDEX])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runs", "0004_liveness")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="tenderrun", index=INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        ),
    ]
