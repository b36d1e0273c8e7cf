"""tenderops' own tables, in their final shape: the audit log and the monitor's heartbeats.

Squashed before the first release from the same day's 0002-0009. A database that applied that
chain has exactly this shape and sees this migration and 0003 as applied; its django_migrations
rows for 0004-0009 stay behind, and Django ignores rows of migrations it no longer has.
Reversing drops these tables and nothing else.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_adopt_tender_tables")]

    operations = [
        migrations.CreateModel(
            name="MaintenanceAction",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("fail_stuck", "fail stuck runs"), ("mark_failed", "mark runs failed"), ("prune", "prune old runs")], max_length=20, verbose_name="action")),
                ("actor", models.CharField(choices=[("user", "user"), ("schedule", "schedule"), ("cli", "command line"), ("api", "API")], max_length=20, verbose_name="actor")),
                ("username", models.CharField(blank=True, default="", max_length=150, verbose_name="user")),
                ("started_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), verbose_name="started at")),
                ("finished_at", models.DateTimeField(blank=True, null=True, verbose_name="finished at")),
                ("parameters", models.JSONField(default=dict, verbose_name="parameters")),
                ("reason", models.TextField(blank=True, default="", verbose_name="reason")),
                ("affected_count", models.PositiveIntegerField(default=0, verbose_name="rows changed")),
                ("completed", models.BooleanField(default=False, verbose_name="completed")),
            ],
            options={
                "verbose_name": "maintenance action",
                "verbose_name_plural": "maintenance actions",
                "db_table": "tenderops_maintenance_action",
                "indexes": [models.Index(fields=["kind", "started_at"], name="tenderops_action_kind")],
            },
        ),
        migrations.CreateModel(
            name="FailedRunRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("run_id", models.TextField(verbose_name="run")),
                ("previous_status", models.TextField(verbose_name="previous status")),
                ("previous_message", models.TextField(blank=True, null=True, verbose_name="previous message")),
                ("previous_error", models.TextField(blank=True, null=True, verbose_name="previous error")),
                ("previous_finished_at", models.DateTimeField(blank=True, null=True)),
                # No database constraint (see runs/models.py); the column keeps its index.
                ("action", models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name="failed_runs", to="runs.maintenanceaction")),
            ],
            options={
                "verbose_name": "failed run record",
                "verbose_name_plural": "failed run records",
                "db_table": "tenderops_failed_run",
                # Exact run ids only: a plain index, without the LIKE twin db_index would add.
                "indexes": [models.Index(fields=["run_id"], name="tenderops_failed_run_run")],
            },
        ),
        migrations.CreateModel(
            name="Heartbeat",
            fields=[
                ("name", models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name="name")),
                ("last_finished_at", models.DateTimeField(verbose_name="last finished")),
                ("last_result", models.JSONField(default=dict, verbose_name="last result")),
            ],
            options={
                "verbose_name": "heartbeat",
                "verbose_name_plural": "heartbeats",
                "db_table": "tenderops_heartbeat",
            },
        ),
    ]
