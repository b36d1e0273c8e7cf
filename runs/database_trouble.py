"""The admin when the database is in trouble: a lock wait bounded as the API's is, and a 503
page that says so, instead of gunicorn killing the worker at 30 s (a 500) or a bare 500.

A table locked by the backend's migration, a trigger of the backend's refusing a change, the
database restarting: the operator gets a page that says what happened and that what a batched
action committed before it stays (the audit log lists it). The traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext as _

from runs.maintenance.db import limit_lock_waits

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/admin/"
RETRY_AFTER_SECONDS = 10


def in_admin(request: HttpRequest) -> bool:
    """Under the admin, wherever the site is mounted (path_info: without SCRIPT_NAME)."""
    return request.path_info.startswith(ADMIN_PREFIX)


class DatabaseTrouble:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not in_admin(request):
            return self.get_response(request)
        try:
            limit_lock_waits()
            # Also what the middlewares inside raise as the response goes out (a session saved).
            return self.get_response(request)
        except DatabaseError as error:
            return self.unavailable(request, error)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DatabaseError) and in_admin(request):
            return self.unavailable(request, exception)
        return None

    def unavailable(self, request: HttpRequest, error: DatabaseError) -> HttpResponse:
        logger.error("database error in %s", request.path, exc_info=error)
        # Before LocaleMiddleware (which queries nothing, but runs inside): the language the
        # request asks for, not the one the thread last served.
        with translation.override(translation.get_language_from_request(request)):
            return self._page(request)

    def _page(self, request: HttpRequest) -> HttpResponse:
        page = format_html(
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>'
            '<body><h1>{title}</h1><p id="database-trouble">{text}</p>'
            '<p><a href="{again}">{retry}</a></p></body></html>',
            title=_("The database is busy or unavailable"),
            text=_(
                "A table was locked for longer than tenderops waits (a migration of the backend?), "
                "or the database refused or dropped the request. Nothing of it was changed, "
                "except batches a cleanup committed before: the audit log lists them. Try again "
                "in a moment."
            ),
            again=request.get_full_path() if request.method == "GET" else reverse("admin:index"),
            retry=_("Try again"),
        )
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
