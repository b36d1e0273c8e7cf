"""What the commands share: argparse types bounded by the routines' own limits, and the
handling of a database that is not there."""

import argparse
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from runs.limits import InvalidParameter, Limit
from runs.maintenance import check_kinds


def bounded_int(name: str, limit: Limit) -> Callable[[str], int]:
    """A whole number within ``limit``, checked by the one parser the routines use."""

    def parse(raw: str) -> int:
        try:
            return limit.parse(raw, name)
        except InvalidParameter as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def kind(raw: str) -> str:
    try:
        return check_kinds([raw])[0]
    except InvalidParameter as error:
        raise argparse.ArgumentTypeError(str(error)) from None


EXIT_DATABASE_UNAVAILABLE = 3


class RoutineCommand(BaseCommand):
    """A command that calls a routine: an unreachable or unmigrated database is one clear
    line and exit code 3 (1 means "declined", 2 bad usage), never a traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except DatabaseError as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise CommandError(
                f"The database is unreachable or not migrated ({first_line[:200]}). "
                "Check DATABASE_URL and run `python manage.py migrate`. Nothing was changed.",
                returncode=EXIT_DATABASE_UNAVAILABLE,
            ) from None
