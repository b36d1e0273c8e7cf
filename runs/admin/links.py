"""Links from a number to the runs it counts: the runs list, filtered by its own filters.

Every count on the stats page (and any new card) links through ``runs_list_url``, so a link
and the list it opens are built from the same filter parameters as the list's sidebar:
clicking a number lands on a list of exactly the runs it counted.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString


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


def change_page_url(model_name: str, pk: object) -> str | None:
    """The admin page of row ``pk`` of ``model_name`` ("tenderrun", "tenderproject"), or None
    when no address can name it: ids are text the backend writes, and "" is one. Such a row
    is shown without a link, as Django's own lists show it."""
    try:
        return reverse(f"admin:runs_{model_name}_change", args=[quote(pk)])
    except NoReverseMatch:
        return None


def linked_code(model_name: str, pk: object, text: str) -> SafeString:
    """``text`` (an id as shown) in <code>, linked to its row's page when one can be named."""
    url = change_page_url(model_name, pk)
    if url is None:
        return format_html("<code>{}</code>", text)
    return format_html('<a href="{}"><code>{}</code></a>', url, text)
