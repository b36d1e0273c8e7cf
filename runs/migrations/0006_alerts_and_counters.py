"""tenderops' tables for alerts and metrics: alerts, their cooldown gates, deliveries and
attempts, and the monotonic counters behind /metrics (never pruned by retention).

Reversing drops these tables and nothing else; the counters start again from zero after a
reverse and a re-apply (Prometheus sees that as a counter reset).
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0005_pending_index"),
    ]

    operations = [
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(choices=[('monitor_failed', 'monitor failed stuck runs'), ('stuck_not_failed', 'stuck runs not failed (report mode)'), ('waiting', 'runs waiting too long'), ('late_finish', 'late finishes'), ('failure_spike', 'failure spike'), ('monitor_stale', 'monitor stale'), ('monitor_recovered', 'monitor recovered'), ('test', 'test message')], max_length=40, verbose_name='event')),
                ('kind', models.TextField(blank=True, default='', verbose_name='kind')),
                ('facts', models.JSONField(default=dict, verbose_name='facts')),
                ('raised_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), verbose_name='raised at')),
            ],
            options={
                'verbose_name': 'alert',
                'verbose_name_plural': 'alerts',
                'db_table': 'tenderops_alert',
                'permissions': [('send_test_alert', 'Can send a test alert')],
                'indexes': [models.Index(fields=['raised_at'], name='tenderops_alert_raised')],
            },
        ),
        migrations.CreateModel(
            name='AlertDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(choices=[('email', 'e-mail'), ('webhook', 'JSON webhook'), ('wecom', 'WeCom'), ('dingtalk', 'DingTalk'), ('feishu', 'Feishu / Lark')], max_length=20, verbose_name='channel')),
                ('status', models.CharField(choices=[('pending', 'pending'), ('sending', 'sending'), ('retrying', 'retrying'), ('sent', 'sent'), ('failed', 'failed'), ('misconfigured', 'configuration error')], max_length=20, verbose_name='status')),
                ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='next attempt')),
                ('answer', models.TextField(blank=True, default='', verbose_name='answer')),
                ('updated_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), verbose_name='updated at')),
                ('alert', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='runs.alert')),
            ],
            options={
                'verbose_name': 'alert delivery',
                'verbose_name_plural': 'alert deliveries',
                'db_table': 'tenderops_alert_delivery',
            },
        ),
        migrations.CreateModel(
            name='AlertAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(choices=[('email', 'e-mail'), ('webhook', 'JSON webhook'), ('wecom', 'WeCom'), ('dingtalk', 'DingTalk'), ('feishu', 'Feishu / Lark')], max_length=20, verbose_name='channel')),
                ('number', models.PositiveIntegerField(verbose_name='attempt')),
                ('started_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), verbose_name='started at')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished at')),
                ('result', models.CharField(choices=[('sending', 'sending'), ('sent', 'sent'), ('error', 'network or server error'), ('throttled', 'throttled'), ('rejected', 'rejected'), ('misconfigured', 'configuration error')], max_length=20, verbose_name='result')),
                ('http_status', models.PositiveIntegerField(blank=True, null=True, verbose_name='HTTP status')),
                ('answer', models.TextField(blank=True, default='', verbose_name='answer')),
                ('paused_until', models.DateTimeField(blank=True, null=True, verbose_name='paused until')),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tries', to='runs.alertdelivery')),
            ],
            options={
                'verbose_name': 'alert attempt',
                'verbose_name_plural': 'alert attempts',
                'db_table': 'tenderops_alert_attempt',
            },
        ),
        migrations.CreateModel(
            name='AlertGate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(choices=[('monitor_failed', 'monitor failed stuck runs'), ('stuck_not_failed', 'stuck runs not failed (report mode)'), ('waiting', 'runs waiting too long'), ('late_finish', 'late finishes'), ('failure_spike', 'failure spike'), ('monitor_stale', 'monitor stale'), ('monitor_recovered', 'monitor recovered'), ('test', 'test message')], max_length=40)),
                ('kind', models.TextField(blank=True, default='')),
                ('last_raised_at', models.DateTimeField()),
                ('open', models.BooleanField(default=False)),
            ],
            options={
                'db_table': 'tenderops_alert_gate',
                'constraints': [models.UniqueConstraint(fields=('event', 'kind'), name='tenderops_alert_gate_key')],
            },
        ),
        migrations.CreateModel(
            name='Counter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('labels', models.JSONField(default=dict)),
                ('value', models.BigIntegerField(default=0)),
            ],
            options={
                'db_table': 'tenderops_counter',
                'constraints': [models.UniqueConstraint(fields=('name', 'labels'), name='tenderops_counter_key')],
            },
        ),
        migrations.AddIndex(
            model_name='alertdelivery',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'retrying', 'sending'])), fields=['next_attempt_at'], name='tenderops_delivery_due'),
        ),
        migrations.AddConstraint(
            model_name='alertdelivery',
            constraint=models.UniqueConstraint(fields=('alert', 'channel'), name='tenderops_delivery_key'),
        ),
        migrations.AddIndex(
            model_name='alertattempt',
            index=models.Index(fields=['channel', 'started_at'], name='tenderops_attempt_window'),
        ),
    ]
