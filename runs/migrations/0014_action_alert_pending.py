"""The monitor's failings that no alert has told yet (``MaintenanceAction.alert_pending``).

Every action already recorded counts as told (the column's default: adding it rewrites
nothing on PostgreSQL), so the first tick after the upgrade tells nothing old again. The
alert log's links get the names their pages show (no change in the database).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0013_observation_running_since'),
    ]

    operations = [
        migrations.AddField(
            model_name='maintenanceaction',
            name='alert_pending',
            field=models.BooleanField(db_default=False, default=False, verbose_name='alert pending'),
        ),
        migrations.AddIndex(
            model_name='maintenanceaction',
            index=models.Index(condition=models.Q(('alert_pending', True)), fields=['id'], name='tenderops_action_untold'),
        ),
        migrations.AlterField(
            model_name='alertattempt',
            name='delivery',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tries', to='runs.alertdelivery', verbose_name='delivery'),
        ),
        migrations.AlterField(
            model_name='alertdelivery',
            name='alert',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='runs.alert', verbose_name='alert'),
        ),
        migrations.AlterField(
            model_name='maintenanceaction',
            name='affected_count',
            field=models.PositiveIntegerField(default=0, verbose_name='runs'),
        ),
    ]
