#!/usr/bin/env python
import os
import sys

EXIT_MISCONFIGURED = 2

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads and checks the environment's settings
    except ImproperlyConfigured as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        sys.exit(EXIT_MISCONFIGURED)
    execute_from_command_line(sys.argv)
