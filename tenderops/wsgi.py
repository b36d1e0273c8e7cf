"""The web entry point (gunicorn). A bad setting stops it with manage.py's one line and the
exit status gunicorn keeps for an application that cannot load: it halts ("App failed to
load.") instead of booting worker after worker, each with a 70-line traceback."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

APP_LOAD_ERROR = 4  # gunicorn's Arbiter.APP_LOAD_ERROR; the systemd unit does not restart on it

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenderops.settings")
try:
    application = get_wsgi_application()
except ImproperlyConfigured as error:
    sys.stderr.write(f"Configuration error: {error}\n")
    sys.exit(APP_LOAD_ERROR)
