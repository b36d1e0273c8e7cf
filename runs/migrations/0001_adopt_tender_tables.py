"""Adopt the tender backend's tables.

Where ``tender_projects`` and ``tender_runs`` already exist (the live database) this migration
only checks that every column tenderops reads is there and changes nothing. Where they are
missing (tests, the demo) it creates them: on PostgreSQL from the live schema itself
(``runs/tender_live.sql``), elsewhere from the models. Reversing it never drops them.
"""

from pathlib import Path

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

from runs.adoption import ADVICE, CREATED_HERE, shape_problems

LIVE_SCHEMA = Path(__file__).resolve().parent.parent / "tender_live.sql"
ADOPTED_TABLES = ("tender_projects", "tender_runs")


def create_or_adopt(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
    present = [table for table in ADOPTED_TABLES if table in existing]
    if len(present) == len(ADOPTED_TABLES):
        check_adopted_columns(apps, schema_editor)
        return
    if present:
        # The live schema would alter the one there and build an index on it without
        # CONCURRENTLY, blocking the backend's writes: this is not a database to create in.
        (missing,) = set(ADOPTED_TABLES) - set(present)
        raise RuntimeError(
            f"{present[0]} exists but {missing} does not: this is neither the tender "
            "backend's database nor an empty one. Nothing was changed; check DATABASE_URL."
        )
    if connection.vendor == "postgresql":
        schema_editor.execute(LIVE_SCHEMA.read_text(encoding="utf-8"), params=None)
        schema_editor.execute("COMMENT ON TABLE tender_runs IS %s", [CREATED_HERE])
        return
    for model_name in ("TenderProject", "TenderRun"):
        model = apps.get_model("runs", model_name)
        if model._meta.db_table not in existing:
            schema_editor.create_model(model)


def check_adopted_columns(apps, schema_editor):
    connection = schema_editor.connection
    for model_name in ("TenderProject", "TenderRun"):
        model = apps.get_model("runs", model_name)
        table = model._meta.db_table
        with connection.cursor() as cursor:
            present = {c.name for c in connection.introspection.get_table_description(cursor, table)}
        missing = sorted({f.column for f in model._meta.local_fields} - present)
        if missing:
            raise RuntimeError(
                f"{table} exists but lacks the column(s) {', '.join(missing)}. tenderops never "
                "alters the tender backend's tables: apply the tender backend's own migrations first."
            )
    problems = shape_problems(connection)
    if problems:
        raise RuntimeError(f"{'; '.join(problems)}. Nothing was changed: {ADVICE}.")


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        # Declared to Django's state only; the RunPython below creates or adopts the tables.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TenderProject",
                    fields=[
                        ("id", models.TextField(primary_key=True, serialize=False)),
                        ("kb_id", models.TextField()),
                        ("name", models.TextField(verbose_name="name")),
                        ("description", models.TextField(blank=True, null=True)),
                        ("owner_id", models.CharField(blank=True, max_length=36, null=True)),
                        ("status", models.TextField(db_default="draft")),
                        ("meta_json", models.JSONField(default=dict)),
                        ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                        ("updated_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                    ],
                    options={
                        "verbose_name": "tender project",
                        "verbose_name_plural": "tender projects",
                        "db_table": "tender_projects",
                        "indexes": [
                            models.Index(fields=["kb_id"], name="idx_tender_projects_kb"),
                            models.Index(fields=["owner_id"], name="idx_tender_projects_owner"),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="TenderRun",
                    fields=[
                        ("id", models.TextField(primary_key=True, serialize=False)),
                        ("run_type", models.TextField(verbose_name="run type")),
                        ("status", models.TextField(db_default="pending", verbose_name="status")),
                        ("model_id", models.TextField(blank=True, null=True, verbose_name="model")),
                        ("started_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), verbose_name="started at")),
                        ("finished_at", models.DateTimeField(blank=True, null=True, verbose_name="finished at")),
                        ("error", models.TextField(blank=True, null=True, verbose_name="error")),
                        ("meta_json", models.JSONField(default=dict, verbose_name="meta")),
                        ("kind", models.TextField(blank=True, null=True, verbose_name="kind column")),
                        ("progress", models.FloatField(blank=True, null=True, verbose_name="progress")),
                        ("message", models.TextField(blank=True, null=True, verbose_name="message")),
                        ("result_json", models.JSONField(blank=True, null=True, verbose_name="result")),
                        ("platform_job_id", models.TextField(blank=True, null=True, verbose_name="platform job id")),
                        ("project", models.ForeignKey(db_column="project_id", db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="runs.tenderproject", verbose_name="project")),
                    ],
                    options={
                        "verbose_name": "tender run",
                        "verbose_name_plural": "tender runs",
                        "db_table": "tender_runs",
                        "permissions": [("mark_failed_tenderrun", "Can mark tender runs failed")],
                        "indexes": [models.Index(fields=["project"], name="idx_tender_runs_project")],
                    },
                ),
            ],
        ),
        migrations.RunPython(create_or_adopt, migrations.RunPython.noop, elidable=False),
    ]
