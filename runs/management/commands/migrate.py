"""Django's ``migrate``, one at a time per database, stopping in one line.

Two at once (two hosts deploying together) raced: one died on "relation already exists" or
a deadlock and ``django_migrations`` got rows twice; on PostgreSQL one now waits for the
other to finish (an advisory lock). A failure (the database unreachable, a step refused: the
owner, the adopted table's shape) was a 70- to 110-line traceback; it is now one line and a
non-zero exit (``--traceback`` shows the rest), saying that the steps done stay done.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DatabaseError, connections

from runs.maintenance.db import gave_way
from runs.management.commands._arguments import (
    EXIT_DATABASE_UNAVAILABLE,
    EXIT_INTERRUPTED,
    error_clause,
)

MIGRATE_LOCK = 7_451_900_002  # an advisory lock's key (the observers' is ...001)
LOCK_RETRY_SECONDS = 0.5
EXIT_REFUSED = 1
DONE_STAYS_DONE = (
    "Any step applied before this stays applied; run migrate again once this is mended."
)


class Command(DjangoMigrate):
    def execute(self, *args: Any, **options: Any) -> Any:
        # Around the system checks too: they open the database (a JSON field's check on
        # SQLite), and a file that cannot be opened was a traceback before handle() ran.
        try:
            return super().execute(*args, **options)
        except DatabaseError as error:
            raise CommandError(
                f"migrate stopped, the database failed: {error_clause(error)}. Check "
                "DATABASE_URL. Nothing was applied.",
                returncode=EXIT_DATABASE_UNAVAILABLE,
            ) from error

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # --plan and --check only read: they never wait for another migrate.
            reads_only = options["plan"] or options["check_unapplied"]
            with one_at_a_time(options["database"], self.stdout.write, skip=reads_only):
                super().handle(*args, **options)
        except DatabaseError as error:
            what = "the database failed"
            if gave_way(error):  # the role's lock_timeout, or a deadlock with the backend
                what = "a lock wait gave way (a long transaction holds tender_runs?)"
            raise CommandError(
                f"migrate stopped, {what}: {error_clause(error)}. {DONE_STAYS_DONE}",
                returncode=EXIT_DATABASE_UNAVAILABLE,
            ) from error
        except RuntimeError as error:  # a step that refused, saying why and what to do
            raise CommandError(
                f"migrate stopped: {error_clause(error)} {DONE_STAYS_DONE}", returncode=EXIT_REFUSED
            ) from error
        except KeyboardInterrupt:
            message = f"migrate interrupted. {DONE_STAYS_DONE}"
            raise CommandError(message, returncode=EXIT_INTERRUPTED) from None


@contextmanager
def one_at_a_time(
    database: str, say: Callable[[str], None], *, skip: bool = False
) -> Iterator[None]:
    """Tried, not waited for: a session waiting in a statement holds a snapshot, which the
    other migrate's CREATE INDEX CONCURRENTLY waits for, while it waits for the lock that
    migrate holds (PostgreSQL found the deadlock and cancelled one)."""
    connection = connections[database]
    if skip or connection.vendor != "postgresql":
        yield
        return
    for attempt in itertools.count():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATE_LOCK])
            if cursor.fetchone()[0]:
                break
        if attempt == 0:
            say("Another migrate is running on this database: waiting for it to finish.")
        time.sleep(LOCK_RETRY_SECONDS)
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK])
        except DatabaseError:
            pass  # the session is gone, and its lock with it
