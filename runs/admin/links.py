"""Links from a number to the runs it counts: the runs list, filtered by its own filters.

Every count on the stats page (and any new card) links through ``runs_list_url``, so a link
and the list it opens are built from the same filter parameters as the list's sidebar:
clicking a number lands on a list of exactly the runs it counted.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.urls import reverse


def runs_list_url(**filters: object) -> str:
    """The runs list filtered by ``filters``: list-filter parameters such as ``status``,
    ``kind``, ``stuck="yes"``, ``started="24h"``, ``started_from`` / ``started_to`` (dates,
    both inclusive, in TENDEROPS_TIME_ZONE), ``error``, ``audit``, ``project``.

    Values that are None or "" are left out; dates are written as YYYY-MM-DD. With no
    filters, the unfiltered list.
    """
    params = {
        name: value.isoformat() if isinstance(value, date) else str(value)
        for name, value in filters.items()
        if value is not None and value != ""
    }
    url = reverse("admin:runs_tenderrun_changelist")
    return f"{url}?{urlencode(params)}" if params else url
