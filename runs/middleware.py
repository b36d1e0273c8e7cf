"""Requests no view can sensibly read are refused here, before any of them reaches a query.

A NUL byte can never be stored in PostgreSQL text, so one in a parameter would raise inside a
query (a 500 in the admin, a 503 from the API); more parameters than Django accepts raise in
the view. Both become a clean 400: JSON under ``/api/``, a short page elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.html import escape
from django.utils.translation import gettext as _

# Longer query values are refused: no filter, search or parameter of tenderops needs more.
MAX_QUERY_VALUE_LENGTH = 2_000
API_PREFIX = "/api/"


class RejectUnreadableRequests:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = unreadable(request)
        if problem is None:
            return self.get_response(request)
        if request.path.startswith(API_PREFIX):
            return JsonResponse(
                {"error": problem}, status=400, json_dumps_params={"ensure_ascii": False}
            )
        return HttpResponseBadRequest(
            f"<!doctype html><title>400</title><p>{escape(problem)}</p>",
            content_type="text/html; charset=utf-8",
        )


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
