"""What the commands share: argparse types bounded by the routines' own limits, and the
handling of a database that is not there."""

import argparse
import codecs
import io
import json
import os
import pwd
import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, NotSupportedError
from django.utils import timezone

from runs.limits import InvalidParameter, Limit
from runs.maintenance import check_kinds
from runs.maintenance.db import gave_way


def error_line(error: BaseException, limit: int = 200) -> str:
    """An error's first line (its type's name when it has none), cut to ``limit``."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]


def error_clause(error: BaseException) -> str:
    """An error's first line to go on with: without its closing full stop."""
    return error_line(error, 500).rstrip(". ")


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
        # A byte that is not UTF-8 reaches argv as a lone surrogate, which no query can send.
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("--kind must be UTF-8 text.") from None
    try:
        return check_kinds([raw])[0]
    except InvalidParameter as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class GivenOnce(argparse.Action):
    """Stores the flag's value; the same flag again with another value is an error (which
    one was meant?), as the API refuses a parameter given twice with different values."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if getattr(self, "given", False) and getattr(namespace, self.dest) != values:
            parser.error(f"{option_string} is given more than once with different values.")
        self.given = True
        setattr(namespace, self.dest, values)


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Bad usage on a terminal: one line and exit code 2, not argparse's usage block first.
    Called from code (``call_command``), Django's CommandError as before."""
    usage_error = parser.error

    def error(message: str) -> None:
        # argparse prefixes the flag to a type's message, which names it already.
        message = re.sub(r"^argument (\S+): \1 ", r"\1 ", message)
        message = re.sub(r"^argument (\S+): ", r"\1: ", message)  # one that does not
        if getattr(parser, "called_from_command_line", False):
            parser.exit(2, f"{parser.prog}: error: {message} (see --help)\n")
        usage_error(message)

    parser.error = error


EXIT_BAD_USAGE = 2  # as argparse exits for a bad flag
EXIT_DATABASE_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130  # as a shell reports a process stopped by Ctrl-C (128 + SIGINT)
EXIT_DECLINED = 1


def shell_user() -> str:
    """Who runs the command, for the audit's "user": the process's account (not $USER,
    which the caller sets), and who became it through sudo. A container may have no name
    for its user: then none."""
    try:
        account = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        account = ""
    sudo = os.environ.get("SUDO_USER", "")
    return (f"{sudo} as {account}" if sudo and sudo != account else account)[:150]


def on_a_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(stream: Any, question: str) -> None:
    """Ask ``question [y/N]`` on ``stream``; return on yes, else stop: nothing was changed."""
    stream.write(f"{question} [y/N] ", ending="")
    stream.flush()
    try:
        answer = sys.stdin.readline().strip().lower()
    except KeyboardInterrupt:
        stream.write("")  # end the prompt's line
        raise CommandError(
            "Interrupted: nothing was changed.", returncode=EXIT_INTERRUPTED
        ) from None
    if answer not in {"y", "yes"}:
        raise CommandError("Aborted: nothing was changed.", returncode=EXIT_DECLINED)


def _never_fail_on_encoding() -> None:
    """A terminal or pipe that cannot encode a kind or id (PYTHONIOENCODING=ascii, a GBK
    console and an emoji) gets it escaped (\\u4e2d), not a UnicodeEncodeError traceback."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


def json_text(payload: Any, stream: Any) -> str:
    """``payload`` as JSON for ``stream``: as it is in UTF-8, else with every non-ASCII
    character escaped the JSON way (the escapes of an output that cannot encode it, ``\\xe9``,
    are no JSON)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    plain = codecs.lookup(encoding).name == "utf-8"
    return json.dumps(payload, ensure_ascii=not plain, indent=2)


class RoutineCommand(BaseCommand):
    """A command that calls a routine: an unreachable or unmigrated database is one clear
    line and exit code 3 (1 means "declined", 2 bad usage), never a traceback."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        # No abbreviations: "--auto" must not pass for "--auto-fix" (it skips the prompt),
        # as the API refuses a near-miss of a parameter's name.
        kwargs.setdefault("allow_abbrev", False)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        one_line_errors(parser)
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        _never_fail_on_encoding()
        try:
            return super().execute(*args, **options)
        except DatabaseError as error:
            first_line = error_line(error)
            if gave_way(error):  # a deadlock or a lock held too long: not the configuration
                message = f"The database gave way to other work on the same rows ({first_line})."
            elif isinstance(error, NotSupportedError):  # the adopted table's shape: our words
                message = f"Nothing was changed: {str(error).strip()[:1000]}"
            else:
                message = (
                    f"The database failed: unreachable, not migrated or refusing ({first_line}). "
                    "Check DATABASE_URL and run `python manage.py migrate`."
                )
            raise CommandError(
                f"{message} {self.left(options)}", returncode=EXIT_DATABASE_UNAVAILABLE
            ) from None
        except BrokenPipeError:
            # Its reader stopped reading (`| head`): done, quietly, as other tools are.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter closes it
            raise SystemExit(0) from None
        except KeyboardInterrupt:
            message = f"Interrupted. {self.left(options)}"
            raise CommandError(message, returncode=EXIT_INTERRUPTED) from None

    def left(self, options: dict[str, Any]) -> str:
        """What a failure part-way leaves behind: for most commands, one transaction undone."""
        return "Nothing was changed."


class BatchedRoutineCommand(RoutineCommand):
    """A command whose routine commits batch by batch (prune, cleanup): a failure part-way
    leaves the batches before it done, and saying "nothing was changed" would be false."""

    def left(self, options: dict[str, Any]) -> str:
        if options.get("dry_run"):
            return "Nothing was changed."
        return (
            "Batches committed before that, if any, stay done (the audit log lists them); run "
            "the command again to go on."
        )


def local_time(moment: datetime) -> str:
    """``moment`` in TENDEROPS_TIME_ZONE, named by its IANA name: an abbreviation is
    ambiguous ("CST" is China's and the American Central time)."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S} ({settings.TIME_ZONE})"
