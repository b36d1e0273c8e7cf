"""When a failing waiting for its kinds' alert cooldown may be told
(``MaintenanceAction.alert_due_at``): a nullable column of tenderops' own table, added
without rewriting it; every action recorded so far is due."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0014_action_alert_pending'),
    ]

    operations = [
        migrations.AddField(
            model_name='maintenanceaction',
            name='alert_due_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='alert due at'),
        ),
    ]
