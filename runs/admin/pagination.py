"""Counting without COUNT(*) over the whole table."""

from __future__ import annotations

from math import ceil

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import EmptyPage, Paginator
from django.db import connection
from django.http import HttpRequest
from django.utils.functional import cached_property

from runs.admin.readonly import DeclaredFiltersChangeList

# Above this many rows an unfiltered list shows the planner's estimate, not an exact count.
ESTIMATE_ABOVE = 50_000
# A filtered list counts at most this many rows and then shows "10,000+".
COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """Exact counts where they are cheap, estimates or caps where they are not.

    Unfiltered: PostgreSQL's ``reltuples`` (maintained by autovacuum) once the table is
    large; filtered: counts at most ``COUNT_CAP + 1`` rows, so a page never scans millions.
    """

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = _estimated_rows(queryset.model._meta.db_table)
            if estimate is not None and estimate > ESTIMATE_ABOVE:
                self.count_is_estimate = True
                return estimate
        capped = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
        self.count_is_capped = capped > COUNT_CAP
        return capped

    count_is_estimate = False
    count_is_capped = False

    @cached_property
    def num_pages(self) -> int:
        """An estimated list pages through its first COUNT_CAP rows, as a filtered one does:
        OFFSET reads every row before its page (the last of 60,000 pages at 3 M runs: 7.5 s,
        and the admin links the last two pages)."""
        pages = super().num_pages
        return min(pages, ceil(COUNT_CAP / self.per_page)) if self.count_is_estimate else pages

    def page(self, number):
        """A page past the end of the rows is refused even when the estimate promised it
        (the planner's count lags a prune until the next ANALYZE); one past the rows a list
        counts or pages through is refused as such (there may be rows there): the list says
        which."""
        try:
            page = super().page(number)
        except EmptyPage:
            past_reach = self.count_is_capped or self.count_is_estimate
            if past_reach and int(number) > 0:  # not page 0: no list has that
                raise PastCountedRows(number) from None
            raise
        if self.count_is_estimate and page.number > 1 and not page.object_list:
            raise EmptyPage(number)
        return page


class PastCountedRows(EmptyPage):
    """A page past the COUNT_CAP rows a list counts (filtered) or pages through (estimated)."""


def _estimated_rows(table: str) -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    # -1 until the first ANALYZE: then the caller counts exactly.
    return row[0] if row and row[0] >= 0 else None


class CountedChangeList(DeclaredFiltersChangeList):
    """Tells the pagination template (admin/runs/pagination.html) whether its count is an
    estimate or a cap. For the runs' CSV export (``request.runs_export``) it only filters,
    searches and orders: no count, no page."""

    def get_results(self, request: HttpRequest) -> None:
        if getattr(request, "runs_export", False):
            return
        try:
            super().get_results(request)
        except IncorrectLookupParameters as error:  # Django's answer to a page it cannot show
            request.page_past_counted_rows = isinstance(error.__context__, PastCountedRows)
            raise
        self.count_is_estimate = self.paginator.count_is_estimate
        self.count_is_capped = self.paginator.count_is_capped
