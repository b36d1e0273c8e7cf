"""The recipients an alert mail is still to reach (``AlertDelivery.recipients_left``): those
the server refused for now while it took the mail for others. A nullable column of
tenderops' own table, added without rewriting it; every delivery so far mails everyone."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0015_action_alert_due_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='alertdelivery',
            name='recipients_left',
            field=models.JSONField(blank=True, null=True, verbose_name='recipients left'),
        ),
    ]
