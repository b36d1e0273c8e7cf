"""Helpers of the operator's console tests: clients, exact start times, reading a list's count."""

from __future__ import annotations

import re
from datetime import datetime

from django.contrib.auth.models import Permission, User
from django.test import Client

from runs.models import TenderRun

LIST = "/admin/runs/tenderrun/"
STATS = "/admin/runs/tenderrun/stats/"
CLEANUP = "/admin/runs/tenderrun/cleanup/"
EXPORT = "/admin/runs/tenderrun/export/"
PAGINATOR = re.compile(r'<p class="paginator">(.*?)</p>', re.S)
COUNT_LINK = re.compile(r'<a href="([^"]+)"[^>]*data-count="(\d+)"')


def staff_client(name: str, *codenames: str) -> Client:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def started_at(run: TenderRun, moment: datetime) -> TenderRun:
    TenderRun.objects.filter(pk=run.pk).update(started_at=moment)
    run.refresh_from_db()
    return run


def list_count(html: str) -> int:
    """The count the runs list shows under its rows (exact below the count cap)."""
    text = re.sub(r"<[^>]+>", " ", PAGINATOR.search(html).group(1))
    return int(re.findall(r"\d[\d,]*", text)[-1].replace(",", ""))


def count_links(html: str) -> list[tuple[str, int]]:
    """Every link of a page that stands for a number of runs: (address, the number)."""
    return [(href.replace("&amp;", "&"), int(n)) for href, n in COUNT_LINK.findall(html)]
