"""Leave a tenth of each new page of ``tender_runs`` free (PostgreSQL).

A run is written several times in its life (progress, message, status). With full pages every
new row version lands on another page, found through the free space map: a cold page, read and
written in full to the WAL after each checkpoint. With room left on the page the new version
stays there, and the backend's progress updates become HOT updates that touch no index. Only
pages written from now on are affected; the change takes a lock that does not block reads or
writes, and nothing is rewritten.
"""

from django.db import migrations

FILLFACTOR = 90


def set_fillfactor(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE tender_runs SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE tender_runs RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("runs", "0008_audit_action_without_constraint")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False)]
