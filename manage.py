#!/usr/bin/env python
import os
import sys

EXIT_MISCONFIGURED = 2


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
