"""Requests no view can sensibly read are refused here, before any of them reaches a query.

A NUL byte can never be stored in PostgreSQL text, so one in a parameter would raise inside a
query (a 500 in the admin, a 503 from the API); more parameters than Django accepts raise in
the view. Under ``/api/`` they are a JSON 400. A page of the admin opened with such an
address is shown without the offending parameters, with a message saying what was ignored;
an admin form posted with one goes back to its page saying nothing was changed.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.utils.html import escape
from django.utils.translation import gettext as _

# Longer query values are refused: no filter, search or parameter of tenderops needs more.
MAX_QUERY_VALUE_LENGTH = 2_000
API_PREFIX = "/api/"
METRICS_PATH = "/metrics"
EXPORT_SUFFIX = "/export/"


def for_machines(request: HttpRequest) -> bool:
    """The API or /metrics, wherever the site is mounted (``path_info`` leaves out the
    SCRIPT_NAME a proxy mounts it under: behind ``/ops`` they got the admin's redirects)."""
    return request.path_info.startswith(API_PREFIX) or request.path_info == METRICS_PATH


class RejectUnreadableRequests:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = unreadable(request)
        if problem is None:
            return self.get_response(request)
        # Machines (the API, Prometheus) get a JSON 400, never a redirect to follow.
        machine = for_machines(request)
        if request.method == "GET" and not machine:
            messages.warning(request, _("Ignored: %(problem)s") % {"problem": problem})
            return HttpResponseRedirect(readable_address(request))
        if request.method == "POST" and not machine:
            # A form of the admin: back to its page (a GET, 303), saying nothing was done.
            back = HttpResponseRedirect(readable_address(request))
            back.status_code = 303
            messages.error(request, _("Nothing was changed: %(problem)s") % {"problem": problem})
            return back
        if machine:
            return JsonResponse(
                {"error": problem}, status=400, json_dumps_params={"ensure_ascii": False}
            )
        return HttpResponseBadRequest(
            f"<!doctype html><title>400</title><p>{escape(problem)}</p>",
            content_type="text/html; charset=utf-8",
        )


def _readable(text: str) -> bool:
    return "\x00" not in text and len(text) <= MAX_QUERY_VALUE_LENGTH


def readable_address(request: HttpRequest) -> str:
    """The same address without what cannot be read."""
    try:
        query = [
            (name, value)
            for name, values in request.GET.lists()
            for value in values
            if _readable(name) and _readable(value)
        ]
    except TooManyFieldsSent:
        query = []
    path = request.path
    if "\x00" in path:
        # The segment with the NUL goes, and all after it: ``tenderrun/%00/change/`` without
        # its NUL asked for a run "/change" ("does not exist"); the list it is under is meant.
        path = path.split("\x00", 1)[0].rpartition("/")[0] + "/"
    # Always a path of this site: "//evil.com/" (a doubled slash, or "%2F" decoded) would be
    # another host to a browser, and a backslash is read as a slash.
    path = "/" + path.lstrip("/\\")
    if path.endswith(EXPORT_SUFFIX):
        # An export without the ignored filter would write more runs than asked: the page.
        path = path.removesuffix(EXPORT_SUFFIX) + "/"
    return f"{path}?{urlencode(query)}" if query else path


def unreadable(request: HttpRequest) -> str | None:
    """Why ``request`` cannot be read, or None."""
    if "\x00" in request.path:
        return _("The address contains a NUL byte.")
    try:
        if request.method == "POST":
            request.body  # noqa: B018 - cached, so the API can still tell that a body was sent
        query = list(request.GET.lists())
        form = list(request.POST.lists()) if request.method == "POST" else []
    except TooManyFieldsSent:
        return _("Too many parameters (at most %(limit)d).") % {
            "limit": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        }
    except RequestDataTooBig:
        return _("The request body is too large.")
    except (MultiPartParserError, BadRequest, SuspiciousOperation):
        # A form in another charset than UTF-8, too many files, a malformed multipart body:
        # each would raise again wherever the form is read (CSRF, the view, the debug page).
        return _("The request body could not be read as the form it says it is.")
    for name, values in [*query, *form]:
        if "\x00" in name or any("\x00" in value for value in values):
            return _("A parameter contains a NUL byte.")
    for name, values in query:
        if len(name) > MAX_QUERY_VALUE_LENGTH or any(
            len(value) > MAX_QUERY_VALUE_LENGTH for value in values
        ):
            return _("A parameter is longer than %(limit)d characters.") % {
                "limit": MAX_QUERY_VALUE_LENGTH
            }
    return None


class HeadWithoutBody:
    """A HEAD answer carries the headers a GET would, and no body: Django leaves dropping it
    to the server, and gunicorn logs a warning for each one it drops (an uptime check's HEAD
    every minute fills the journal)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method != "HEAD":
            return response
        if response.streaming:
            response.streaming_content = []
        else:
            length = len(response.content)
            response.content = b""
            response.headers["Content-Length"] = str(length)
        return response
