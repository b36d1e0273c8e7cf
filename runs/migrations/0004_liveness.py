"""Signs of life: tenderops' observation of active runs, why each run was failed, and late
finishes (runs a worker finished after tenderops failed them). Only tenderops' own tables."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0003_tender_runs_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='RunObservation',
            fields=[
                ('run_id', models.TextField(primary_key=True, serialize=False, verbose_name='run')),
                ('fingerprint', models.CharField(max_length=32, verbose_name='fingerprint')),
                ('first_seen_at', models.DateTimeField(verbose_name='first seen')),
                ('last_change_at', models.DateTimeField(blank=True, null=True, verbose_name='last change seen')),
                ('changes', models.PositiveIntegerField(default=0, verbose_name='changes seen')),
            ],
            options={
                'verbose_name': 'run observation',
                'verbose_name_plural': 'run observations',
                'db_table': 'tenderops_run_observation',
            },
        ),
        migrations.AddField(
            model_name='failedrunrecord',
            name='finished_late_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='finished late at'),
        ),
        migrations.AddField(
            model_name='failedrunrecord',
            name='reason',
            field=models.CharField(choices=[('silent', 'silent too long'), ('max_runtime', 'over the maximum runtime'), ('age', 'running too long'), ('waiting', 'pending too long'), ('manual', 'marked failed by hand')], default='age', max_length=20, verbose_name='why'),
        ),
        migrations.AddField(
            model_name='failedrunrecord',
            name='silent_minutes',
            field=models.FloatField(blank=True, null=True, verbose_name='silent minutes'),
        ),
        migrations.AlterField(
            model_name='maintenanceaction',
            name='kind',
            field=models.CharField(choices=[('fail_stuck', 'fail stuck runs'), ('would_fail', 'would fail stuck runs (report mode)'), ('mark_failed', 'mark runs failed'), ('prune', 'prune old runs')], max_length=20, verbose_name='action'),
        ),
    ]
