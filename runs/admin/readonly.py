"""The base of every admin here: nothing is added, changed or deleted through a form, and a
list filters only by the filters it shows."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _

from runs.admin.display import truncate


class DroppedParameters(Exception):
    """Parameters of a list's address it will not read: a lookup no filter reads
    (``?message__regex=(``), or a value its filter does not offer (``?liveness=bogus``). The
    list is shown again without them, saying so; nothing is listed, exported or acted on
    under a filter that only looks set, nor are they carried into the list's links."""

    def __init__(self, names: list[str], message: str) -> None:
        super().__init__(message)
        self.names = names
        self.message = message


class DeclaredFiltersChangeList(ChangeList):
    """Django filters a list by any lookup on a model's own fields left in its address: a
    regular expression the database cannot compile is a 500, a ``message__icontains`` a
    whole-table scan, for anyone who may view the list. Here only the list's filters read
    the address; anything else left is refused before a query runs."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if self.full_result_count is None and not self.has_active_filters and not self.query:
            # Unfiltered, the count is the whole list's: Django's "3010 results (Show all)"
            # offered to show what is shown.
            self.full_result_count = self.result_count

    def get_filters(self, request: HttpRequest):
        specs, has_filters, remaining, may_have_duplicates, active = super().get_filters(request)
        undeclared = sorted(name for name in remaining if not self._equals_a_filter(name))
        if undeclared:
            shown = ", ".join(truncate(name, 40) for name in undeclared[:3])
            message = _("Ignored %(names)s: the list has no such filter.") % {"names": shown}
            raise DroppedParameters(undeclared, message)
        return specs, has_filters, remaining, may_have_duplicates, active

    def _equals_a_filter(self, name: str) -> bool:
        """``?status=failed`` on a list filtered by the field ``status``: the equality its
        filter would ask (``status__exact``), written by hand."""
        fields = {
            entry[0] if isinstance(entry, (tuple, list)) else entry for entry in self.list_filter
        }
        return name.removesuffix("__exact") in {f for f in fields if isinstance(f, str)}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runs belong to the tender backend and the audit log to history: nobody edits either,
    superusers included; changes go through the routines only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changelist(self, request, **kwargs):
        return DeclaredFiltersChangeList

    def changelist_view(self, request, extra_context=None):
        try:
            response = super().changelist_view(request, extra_context)
        except DroppedParameters as dropped:
            messages.warning(request, dropped.message)
            return redirect_without(request, dropped.names)
        if _is_error_redirect(request, response) and "p" in request.GET:
            # Most likely a page past the last (the list shrank): the same list, from its start.
            messages.warning(request, self._no_such_page(request, request.GET["p"][:20]))
            return redirect_without(request, ["p"])
        if _is_error_redirect(request, response):
            # Django's own answer to an address it could not serve (a page past the last, a
            # value a field's filter cannot compare): the bare list, without a word.
            messages.warning(request, _("The list's address was not understood: showing all."))
        return response

    def _no_such_page(self, request: HttpRequest, page: str) -> str:
        from runs.admin.pagination import COUNT_CAP  # which imports this module

        # A list pages through its first COUNT_CAP rows: a page past them may well have some.
        if getattr(request, "page_past_counted_rows", False):
            return _(
                "Page %(page)s is past the first %(cap)s rows this list pages through: filter "
                "or search the list to reach the others. Showing the first page."
            ) % {"page": page, "cap": f"{COUNT_CAP:,}"}
        return _("There is no page %(page)s of this list: showing the first.") % {"page": page}


def redirect_without(request: HttpRequest, names: list[str]) -> HttpResponse:
    """The same address without the parameters ``names``."""
    kept = [
        (name, value)
        for name, values in request.GET.lists()
        if name not in names
        for value in values
    ]
    return HttpResponseRedirect(f"{request.path}?{urlencode(kept)}" if kept else request.path)


def _is_error_redirect(request: HttpRequest, response: HttpResponse) -> bool:
    return (
        isinstance(response, HttpResponseRedirect)
        and response.url.endswith(f"?{ERROR_FLAG}=1")
        and request.method == "GET"
    )
