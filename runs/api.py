"""The HTTP API for the tender backend, cron and uptime checks, and /metrics: thin views over
the routines.

Authorised by ``Authorization: Bearer <TENDEROPS_API_TOKEN>`` (off while the setting is empty)
or by a logged-in staff session holding the mark-failed permission, with CSRF on POST. The
read-only ``TENDEROPS_METRICS_TOKEN`` opens the health endpoint and /metrics, nothing else;
/metrics also opens to a staff session that may view runs. The API token does not open it.
"""

import hmac
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error

from runs import limits
from runs.alerting.delivery import alert_on_health
from runs.limits import InvalidParameter, parse_switch
from runs.maintenance import fail_stuck_runs, monitor_health
from runs.maintenance.db import limit_lock_waits
from runs.metrics import exposition
from runs.middleware import API_PREFIX, for_machines
from runs.models import Actor

logger = logging.getLogger(__name__)

MARK_FAILED_PERMISSION = "runs.mark_failed_tenderrun"
VIEW_PERMISSION = "runs.view_tenderrun"
TOKEN_QUERY_NAMES = {"token", "access_token", "api_token", "auth", "authorization"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# A lock wait past LOCK_WAIT is the likeliest cause, and it may come before any batch.
FAILED_PART_WAY = gettext_lazy(
    "A table was locked for longer than tenderops waits (a migration of the backend?), or the "
    "database refused or dropped the request. Runs failed by batches committed before that, "
    "if any, stay failed (the audit log lists them); call again to go on."
)


def error_response(status: int, message: str) -> JsonResponse:
    response = JsonResponse(
        {"error": message}, status=status, json_dumps_params={"ensure_ascii": False}
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="tenderops"'
    return response


def _csrf_failure(request: HttpRequest) -> bool:
    rejected = CsrfViewMiddleware(lambda req: None).process_view(request, None, (), {})
    return rejected is not None


def _token_matches(presented: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(presented.strip().encode(), expected.encode())


def _bearer(request: HttpRequest) -> str | None:
    """The bearer token presented, None without an Authorization header; 401 for a token in
    the URL or another scheme."""
    if TOKEN_QUERY_NAMES & {key.lower() for key in request.GET}:
        raise ApiError(401, _("Send the token in the Authorization header, never in the URL."))
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _sep, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, _("Invalid credentials."))
    return presented


def _refused_token(setting: str, expected: str) -> ApiError:
    """A token that does not match; when this server has none set, saying so (a token can
    never work here, however right it is: the demo, a forgotten variable)."""
    if not expected:
        return ApiError(
            401,
            _("Invalid credentials: this server accepts no token (%(setting)s is not set).")
            % {"setting": setting},
        )
    return ApiError(401, _("Invalid credentials."))


def authorise(request: HttpRequest, *, read_only: bool = False) -> tuple[Actor, str]:
    """Who is calling, as (actor, username); raises ApiError 401 or 403. ``read_only``
    endpoints accept the metrics token too, and a staff session that may view runs."""
    presented = _bearer(request)
    if presented is not None:
        if _token_matches(presented, settings.TENDEROPS_API_TOKEN) or (
            read_only and _token_matches(presented, settings.TENDEROPS_METRICS_TOKEN)
        ):
            return Actor.API, ""
        if read_only:  # health takes the metrics token too
            accepted = settings.TENDEROPS_API_TOKEN or settings.TENDEROPS_METRICS_TOKEN
            raise _refused_token("TENDEROPS_API_TOKEN / TENDEROPS_METRICS_TOKEN", accepted)
        if _token_matches(presented, settings.TENDEROPS_METRICS_TOKEN):
            raise ApiError(
                403,
                _(
                    "This is the metrics token: it reads health and /metrics only. Cleaning up "
                    "takes TENDEROPS_API_TOKEN."
                ),
            )
        raise _refused_token("TENDEROPS_API_TOKEN", settings.TENDEROPS_API_TOKEN)
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        raise ApiError(401, _("Authentication required."))
    if read_only:
        _check_may_read(user)
    elif not user.has_perm(MARK_FAILED_PERMISSION):
        raise ApiError(403, _("You do not have permission to mark runs failed."))
    if request.method not in {"GET", "HEAD", "OPTIONS", "TRACE"} and _csrf_failure(request):
        raise ApiError(403, _("CSRF verification failed."))
    return Actor.USER, user.get_username()


def authorise_metrics(request: HttpRequest) -> None:
    """The metrics token, or a staff session that may view runs; never the API token."""
    presented = _bearer(request)
    if presented is not None:
        if _token_matches(presented, settings.TENDEROPS_METRICS_TOKEN):
            return
        if _token_matches(presented, settings.TENDEROPS_API_TOKEN):
            raise ApiError(
                403, _("This is the API token: /metrics takes its own, TENDEROPS_METRICS_TOKEN.")
            )
        raise _refused_token("TENDEROPS_METRICS_TOKEN", settings.TENDEROPS_METRICS_TOKEN)
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        raise ApiError(401, _("Authentication required."))
    _check_may_read(user)


def _check_may_read(user) -> None:
    """Health and /metrics alike: reading them is viewing runs (or failing them, which
    shows the runs failed)."""
    if not (user.has_perm(VIEW_PERMISSION) or user.has_perm(MARK_FAILED_PERMISSION)):
        raise ApiError(403, _("You do not have permission to view runs."))


def answered(request: HttpRequest, methods: set[str], work: Callable[[], HttpResponse]):
    """``work()``'s response, or the JSON error that says why not: a method not allowed
    (405), what ``ApiError`` says, bad input (400), the database unavailable (503) or a
    table locked past ``limit_lock_waits``' bound (503, not gunicorn's HTML 500 at 30 s). No
    traceback ever reaches the client."""
    try:
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            raise ApiError(
                403, _("This endpoint is served over HTTPS only: call its https:// address.")
            )
        if request.method not in methods:
            response = error_response(
                405,
                _("Method not allowed: use %(methods)s.") % {"methods": ", ".join(sorted(methods))},
            )
            response["Allow"] = ", ".join(sorted(methods))
            return response
        response = work()
    except ApiError as error:
        response = error_response(error.status, error.message)
    except InvalidParameter as error:
        response = error_response(400, str(error))
    except DatabaseError:
        logger.exception("database error in %s", request.path)
        response = error_response(503, _("The database is unavailable; try again."))
    # Every answer is of this moment (a health check, a count): no proxy or client keeps it.
    patch_cache_control(response, no_store=True)
    return response


def api_view(methods: set[str], *, read_only: bool = False) -> Callable:
    """JSON in, JSON out: method check, auth, and the errors of ``answered``."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt  # the token path needs none; authorise() checks CSRF for sessions
        @wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            def work() -> HttpResponse:
                actor, username = authorise(request, read_only=read_only)
                limit_lock_waits()
                return view(request, actor, username)

            return answered(request, methods, work)

        return wrapper

    return decorate


FORM_TYPES = {"multipart/form-data", "application/x-www-form-urlencoded"}


def has_body(request: HttpRequest) -> bool:
    """Whether the request carries content: form fields, files, or any other non-blank body.
    An empty form, as some clients send with every POST, is no content; a multipart body
    whose parts Django drops (a part without a name) is content all the same, and so is a
    chunked body: Django reads only what a Content-Length announces, so it would see none."""
    if request.META.get("HTTP_TRANSFER_ENCODING"):
        return True
    if request.method != "POST":
        # Judged by its announcement, not read: a body announced and never sent held a
        # worker until gunicorn's timeout (a health check's GET, 30 s, then a bare 500).
        return _announced_length(request) != 0
    form = request.content_type in FORM_TYPES
    if form and (request.POST or request.FILES):
        return True
    # Read before any form parsing (runs.middleware), so here still.
    body = request.body.strip()
    return bool(body) and body != _closing_boundary(request)


def _announced_length(request: HttpRequest) -> int | None:
    """The Content-Length announced (0 when none), or None when it is no number."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


def _closing_boundary(request: HttpRequest) -> bytes | None:
    """The body of an empty multipart form: its closing boundary alone."""
    boundary = request.content_params.get("boundary")
    if request.content_type != "multipart/form-data" or not boundary:
        return None
    return b"--" + boundary.encode("latin-1", "replace") + b"--"


def query_parameters(
    request: HttpRequest, allowed: set[str], repeatable: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """The query string, refused unless every parameter is known and said once (or the same
    each time); a body is refused too: what the API does not understand, it does not do."""
    if has_body(request):
        raise InvalidParameter(_("This endpoint takes no body; pass parameters in the URL."))
    parameters = dict(request.GET.lists())
    unknown = sorted(set(parameters) - allowed)
    if unknown and not allowed:
        raise InvalidParameter(
            _("Unknown parameter %(name)s; this endpoint takes no parameters.")
            % {"name": repr(unknown[0][:40])}
        )
    if unknown:
        raise InvalidParameter(
            _("Unknown parameter %(name)s; this endpoint accepts: %(allowed)s.")
            % {"name": repr(unknown[0][:40]), "allowed": ", ".join(sorted(allowed))}
        )
    for name, values in parameters.items():
        if name not in repeatable and len(set(values)) > 1:
            raise InvalidParameter(
                _("%(name)s is given more than once with different values.") % {"name": name}
            )
    return parameters


def parse_timeout(values: list[str] | None) -> int | None:
    return None if not values else limits.TIMEOUT_MINUTES.parse(values[0], "timeout_minutes")


def parse_dry_run(values: list[str] | None) -> bool:
    """Absent: a real cleanup. Present without a value (``?dry_run``): a dry run."""
    if values is None:
        return False
    return values[0].strip() == "" or parse_switch(values[0], "dry_run")


CLEANUP_PARAMETERS = {"timeout_minutes", "kind", "dry_run"}


@api_view({"POST"})
def cleanup_stuck_runs(request: HttpRequest, actor: Actor, username: str) -> JsonResponse:
    parameters = query_parameters(request, CLEANUP_PARAMETERS, repeatable=frozenset({"kind"}))
    dry_run = parse_dry_run(parameters.get("dry_run"))
    try:
        result = fail_stuck_runs(
            actor=actor,
            username=username,
            timeout_minutes=parse_timeout(parameters.get("timeout_minutes")),
            kinds=parameters.get("kind", []),
            dry_run=dry_run,
        )
    except DatabaseError:
        if dry_run:
            raise
        # Batches commit one by one: "try again" alone would hide the ones already done.
        logger.exception("database error in %s", request.path)
        raise ApiError(503, str(FAILED_PART_WAY)) from None
    return JsonResponse(result.as_dict(), json_dumps_params={"ensure_ascii": False})


@api_view({"GET", "HEAD"}, read_only=True)
def health(request: HttpRequest, actor: Actor, username: str) -> JsonResponse:
    """The monitor's health; a stale monitor raises its alert from here (once per cooldown),
    delivered by this process, since a stopped cluster delivers nothing."""
    query_parameters(request, set())
    report = monitor_health()
    try:
        alert_on_health(report, source="health", background=True)
    except Exception:
        logger.exception("the health endpoint could not raise its alert")
    return JsonResponse(
        report.as_dict(),
        status=503 if report.failing_check else 200,
        json_dumps_params={"ensure_ascii": False},
    )


@csrf_exempt  # read-only, GET only
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format (or OpenMetrics, if the scraper asks for it)."""

    def work() -> HttpResponse:
        authorise_metrics(request)
        limit_lock_waits()
        query_parameters(request, set())
        body, content_type = exposition(request.headers.get("Accept", ""))
        response = HttpResponse(body, content_type=content_type)
        patch_vary_headers(response, ["Accept"])  # text or OpenMetrics, as asked
        return response

    return answered(request, {"GET", "HEAD"}, work)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The site's 400 for what Django refuses before any view (a Host header not in
    DJANGO_ALLOWED_HOSTS, say): under ``/api/`` and at /metrics JSON, elsewhere Django's page."""
    if for_machines(request):
        if isinstance(exception, DisallowedHost):
            message = _(
                "The request's Host is not one this server answers to (DJANGO_ALLOWED_HOSTS)."
            )
        else:
            message = _("Bad request.")
        return error_response(400, message)
    return django_bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The site's 404: under ``/api/`` a JSON answer like every other of the API (a client
    reading ``error`` gets one), elsewhere Django's page."""
    if request.path_info.startswith(API_PREFIX):
        return error_response(404, _("No such endpoint: %(path)s") % {"path": request.path[:200]})
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """The site's 500 (a bug: the traceback goes to the log): under ``/api/`` and at
    /metrics JSON, as every other answer there, elsewhere Django's page."""
    if for_machines(request):
        response = error_response(500, _("Internal error: tenderops' log has the details."))
        patch_cache_control(response, no_store=True)
        return response
    return django_server_error(request)
