"""tenderops' indexes on the live ``tender_runs``, built CONCURRENTLY on PostgreSQL.

Non-atomic, so the live table keeps taking writes while they build. An index left INVALID by
an interrupted build is dropped and built again; one that already exists is kept.
"""

from django.db import migrations, models

INDEXES = [
    models.Index(
        fields=["started_at"], name="tenderops_running_started", condition=models.Q(status="running")
    ),
    models.Index(fields=["status", "started_at"], name="tenderops_status_started"),
    models.Index(fields=["started_at", "id"], name="tenderops_started_id"),
]


def index_validity(schema_editor, name):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def add_indexes(apps, schema_editor):
    model = apps.get_model("runs", "TenderRun")
    for index in INDEXES:
        if schema_editor.connection.vendor != "postgresql":
            schema_editor.add_index(model, index)
            continue
        valid = index_validity(schema_editor, index.name)
        if valid:
            continue
        if valid is False:
            schema_editor.remove_index(model, index, concurrently=True)
        schema_editor.add_index(model, index, concurrently=True)


def remove_indexes(apps, schema_editor):
    model = apps.get_model("runs", "TenderRun")
    concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    for index in INDEXES:
        schema_editor.remove_index(model, index, **concurrently)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runs", "0002_audit_log")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="tenderrun", index=index) for index in INDEXES
            ],
        ),
        migrations.RunPython(add_indexes, remove_indexes),
    ]
