"""Observations say since when their run is running, so that the maximum runtime counts
from the moment a worker picked the run up, not from when it was queued.

Observations of runs running now start from the run's start: the rule as it was for them
(no run already running is given more time by the upgrade). Observations of pending runs
start empty, and the observation that sees a worker pick one up fills it in. Only the
observations (of the active runs, a few thousand) are written; ``tender_runs`` is read.
"""

from django.db import migrations, models

RUNNING_SINCE_START = """
    UPDATE tenderops_run_observation SET running_since = (
        SELECT r.started_at FROM tender_runs AS r
        WHERE r.id = tenderops_run_observation.run_id AND r.status = 'running'
    )
"""


class Migration(migrations.Migration):
    dependencies = [("runs", "0012_alert_resolved")]

    operations = [
        migrations.AddField(
            model_name="runobservation",
            name="running_since",
            field=models.DateTimeField(blank=True, null=True, verbose_name="running since"),
        ),
        migrations.RunSQL(RUNNING_SINCE_START, migrations.RunSQL.noop),
    ]
