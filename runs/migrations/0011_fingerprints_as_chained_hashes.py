"""Observations keep their meaning across the change of fingerprint (PostgreSQL only).

The fingerprint of a run's signs of life was the 64-bit hash of its status, progress and
message joined as text; it is now made of chained 64-bit hashes of the three columns
(``runs.models.tender.Fingerprint``). Without this step every active run would look changed
at its next observation, and a run silent for hours would be given one more timeout.

Each observation whose stored fingerprint is still the run's fingerprint the old way gets
the run's fingerprint the new way: nothing changed, nothing is counted. An observation whose
run changed since it was made keeps its old value, so the next observation sees the change,
as it would have. Only the observations (of the active runs, a few thousand) are touched;
``tender_runs`` is read, never written. Backwards does the same the other way. On SQLite
the fingerprint did not change.
"""

from django.db import migrations

OLD = (
    "CAST(hashtextextended(COALESCE(r.status, chr(1)) || chr(2) || "
    "COALESCE((r.progress)::text, chr(1)) || chr(2) || COALESCE(r.message, chr(1)), 0) AS text)"
)
NEW = (
    "CAST(hashtextextended(COALESCE(r.message, chr(1)), "
    "hashfloat8extended(COALESCE(r.progress, 'NaN'::float8), "
    "hashtextextended(COALESCE(r.status, chr(1)), 0))) AS text)"
)


def _convert(schema_editor, source: str, target: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"UPDATE tenderops_run_observation AS o SET fingerprint = {target} "
        f"FROM tender_runs AS r WHERE r.id = o.run_id AND o.fingerprint = {source}"
    )


def forwards(apps, schema_editor) -> None:
    _convert(schema_editor, OLD, NEW)


def backwards(apps, schema_editor) -> None:
    _convert(schema_editor, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [("runs", "0010_observation_of_run")]

    operations = [migrations.RunPython(forwards, backwards)]
