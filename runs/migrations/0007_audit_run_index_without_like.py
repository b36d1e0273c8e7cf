"""The audit's run index without the LIKE twin that ``db_index`` gives a text field.

Runs are only ever looked up by exact id, and every audited run paid for a second index entry.
The existing index is kept and renamed (no rebuild of a large audit table on PostgreSQL).
"""

from django.db import migrations, models

OLD = "tenderops_failed_run_run_id_2c96dba2"
NEW = "tenderops_failed_run_run"


def keep_one_index(apps, schema_editor) -> None:
    quote = schema_editor.quote_name
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {quote(OLD + '_like')}")
        schema_editor.execute(f"ALTER INDEX IF EXISTS {quote(OLD)} RENAME TO {quote(NEW)}")
    else:
        schema_editor.execute(f"DROP INDEX IF EXISTS {quote(OLD)}")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(NEW)} ON tenderops_failed_run (run_id)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0006_audit_without_redundant_constraint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="failedrunrecord",
                    name="run_id",
                    field=models.TextField(verbose_name="run"),
                ),
                migrations.AddIndex(
                    model_name="failedrunrecord",
                    index=models.Index(fields=["run_id"], name=NEW),
                ),
            ],
            database_operations=[migrations.RunPython(keep_one_index, elidable=False)],
        ),
    ]
