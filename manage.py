#!/usr/bin/env python
import os
import secrets
import sys

EXIT_MISCONFIGURED = 2
HELP_OPTIONS = {"-h", "--help"}


def asks_for_help(argv: list[str]) -> bool:
    """``manage.py``, ``manage.py help …`` or a command's ``-h``/``--help`` (before any
    ``--``): argparse then prints the help and exits before the command runs."""
    arguments = argv[1:]
    if "--" in arguments:
        arguments = arguments[: arguments.index("--")]
    return not arguments or arguments[0] == "help" or not HELP_OPTIONS.isdisjoint(arguments)


def stand_in_for_unset_secrets() -> None:
    """The help reads no secret and no database, but loading the settings requires both: an
    operator reading ``--help`` on a machine without production's environment should not
    need them. Set values are kept (and checked); a stand-in key is random, never a known
    one, and the stand-in database an empty one."""
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DATABASE_URL", "sqlite:////dev/null")


def chosen_settings(argv: list[str]) -> str | None:
    """The module ``--settings`` names: the settings are loaded (and checked) before Django
    reads its options, so the option is applied here."""
    for position, argument in enumerate(argv):
        if argument.startswith("--settings="):
            return argument.partition("=")[2]
        if argument == "--settings" and position + 1 < len(argv):
            return argv[position + 1]
    return None


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")
    os.environ["DJANGO_SETTINGS_MODULE"] = (
        chosen_settings(sys.argv) or os.environ["DJANGO_SETTINGS_MODULE"]
    )
    if asks_for_help(sys.argv):
        stand_in_for_unset_secrets()
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads and checks the environment's settings
    except ImproperlyConfigured as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        sys.exit(EXIT_MISCONFIGURED)
    except ImportError as error:
        module = os.environ["DJANGO_SETTINGS_MODULE"]
        sys.stderr.write(f"Configuration error: settings {module!r} cannot be loaded: {error}\n")
        sys.exit(EXIT_MISCONFIGURED)
    execute_from_command_line(sys.argv)
