"""The stats page's snapshot (runs.maintenance.stats_snapshot): one row of tenderops' own.

Taken back only by the role that owns ``tender_runs`` (like every migration before it), so a
``migrate runs zero`` by another role stops here before any change.
"""

from django.db import migrations, models

from runs.migrations import _indexes


def backwards_check(apps, schema_editor):
    if _indexes.is_postgresql(schema_editor):
        _indexes.require_owner(schema_editor, "take back tenderops' tables")


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0006_alerts_and_counters'),
    ]

    operations = [
        migrations.CreateModel(
            name='StatsSnapshot',
            fields=[
                ('name', models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name='name')),
                ('computed_at', models.DateTimeField(blank=True, null=True, verbose_name='counts as of')),
                ('data', models.JSONField(default=dict, verbose_name='figures')),
                ('seconds', models.FloatField(default=0, verbose_name='seconds to compute')),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='last attempt')),
                ('last_error', models.TextField(blank=True, default='', verbose_name='last error')),
            ],
            options={
                'verbose_name': 'stats snapshot',
                'verbose_name_plural': 'stats snapshots',
                'db_table': 'tenderops_stats_snapshot',
            },
        ),
        # Reversed first: stop before any change unless the role owns tender_runs.
        migrations.RunPython(migrations.RunPython.noop, backwards_check, elidable=False),
    ]
