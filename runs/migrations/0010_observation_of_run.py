"""The observation's ``run_id`` becomes a one-to-one link to its run, in Django's state only.

The column, its type and its primary key stay exactly as they are, and no constraint is added
(a run can be deleted before its observation is forgotten): nothing is written to the
database. The link lets the queries that judge runs join the observations once.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0009_late_finish_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("runobservation", "run_id", "run"),
                migrations.AlterField(
                    model_name="runobservation",
                    name="run",
                    field=models.OneToOneField(
                        db_column="run_id",
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="observation",
                        serialize=False,
                        to="runs.tenderrun",
                        verbose_name="run",
                    ),
                ),
            ],
        ),
    ]
