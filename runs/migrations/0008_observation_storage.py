"""The observation table written like the hot table it is (PostgreSQL only; tenderops' own
table, small): every tick rewrites the row of each active run that changed, 2,000 rows a
minute for 2,000 active runs.

- ``fillfactor = 50``: the new version of a row stays on its page (a HOT update), so no
  index entry is written for it.
- No ``text_pattern_ops`` index on ``run_id``: Django adds one beside the primary key of a
  text column for ``LIKE`` lookups, which nothing does here; each row version not updated
  HOT paid an entry in it.
"""

from django.db import migrations

TABLE = "tenderops_run_observation"
LIKE_INDEX = "tenderops_run_observation_run_id_like"


def _like_indexes(schema_editor) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s "
            "AND indexdef LIKE '%%text_pattern_ops%%'",
            [TABLE],
        )
        return [row[0] for row in cursor.fetchall()]


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _like_indexes(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
    schema_editor.execute(f"ALTER TABLE {TABLE} SET (fillfactor = 50)")


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} RESET (fillfactor)")
    if not _like_indexes(schema_editor):
        schema_editor.execute(f"CREATE INDEX {LIKE_INDEX} ON {TABLE} (run_id text_pattern_ops)")


class Migration(migrations.Migration):
    dependencies = [("runs", "0007_stats_snapshot")]

    operations = [migrations.RunPython(forwards, backwards)]
