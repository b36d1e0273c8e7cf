"""What a hand-edited address does to the admin's lists (runs.admin.readonly, filters): a
lookup no filter reads is refused before any query, with a message; a value a filter
ignores is said; a CSV export never writes more runs than the address asked for."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.console import EXPORT, LIST, staff_client

LISTS = [
    LIST,
    "/admin/runs/alert/",
    "/admin/runs/alertdelivery/",
    "/admin/runs/maintenanceaction/",
    "/admin/runs/tenderproject/",
]
# A regular expression PostgreSQL cannot compile (a 500 from Django's own admin), a year
# Python cannot represent (a 500 too), and a whole-table text search past the list's
# 30-day search window.
UNDECLARED = ["message__regex=(", "started_at__year=99999", "message__icontains=x", "id__regex=("]


@pytest.fixture
def superuser_client(db):
    from django.contrib.auth.models import User
    from django.test import Client

    User.objects.create_superuser("root", password="pw")
    client = Client()
    client.login(username="root", password="pw")
    return client


@pytest.mark.parametrize("page", LISTS)
def test_a_lookup_no_filter_reads_is_refused_with_a_message(superuser_client, make_run, page):
    make_run()
    response = superuser_client.get(f"{page}?id__regex=(&o=1")
    assert response.status_code == 302 and response["Location"] == f"{page}?o=1"
    shown = superuser_client.get(response["Location"])
    html = shown.content.decode()
    assert shown.status_code == 200
    assert "Ignored id__regex: the list has no such filter." in html


@pytest.mark.parametrize("lookup", UNDECLARED)
def test_the_runs_list_refuses_field_lookups_and_keeps_its_filters(db, make_run, lookup):
    viewer = staff_client("viewer", "view_tenderrun")
    failed = make_run(status="failed", message="x")
    response = viewer.get(f"{LIST}?status=failed&{lookup}")
    assert response.status_code == 302 and response["Location"] == f"{LIST}?status=failed"
    html = viewer.get(response["Location"]).content.decode()
    assert failed.pk in html and "the list has no such filter" in html


def test_an_action_on_a_list_with_a_foreign_lookup_changes_nothing(db, make_run):
    operator = staff_client("operator", "view_tenderrun", "mark_failed_tenderrun")
    run = make_run()
    post = {"action": "mark_failed", "_selected_action": [run.pk], "index": "0"}
    response = operator.post(f"{LIST}?message__regex=(", post)
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "running"


@pytest.mark.parametrize(
    "path, back_to",
    [
        ("/admin/runs/tenderrun/%00/change/", "/admin/runs/tenderrun/"),
        ("/admin/runs/tenderrun/tr_1%00x/change/", "/admin/runs/tenderrun/"),
        ("/admin/runs/tenderrun/%00", "/admin/runs/tenderrun/"),
        ("/%00", "/"),
    ],
)
def test_a_nul_byte_in_the_path_leads_back_to_the_page_above_it(db, path, back_to):
    """Without its NUL, ``tenderrun/%00/change/`` asked for a run "/change": "does not exist"."""
    response = staff_client("viewer", "view_tenderrun").get(path)
    assert (response.status_code, response["Location"]) == (302, back_to)


def test_a_page_past_the_end_is_said(db, make_run):
    viewer = staff_client("viewer", "view_tenderrun")
    for _ in range(51):  # two pages
        make_run(status="success")
    response = viewer.get(f"{LIST}?status=success&p=99999", follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and "There is no page 99999 of this list" in html
    # The same list, its filter kept (Django's own answer dropped every filter).
    assert response.redirect_chain[-1][0] == f"{LIST}?status=success"


def test_a_page_past_a_capped_count_says_the_list_counts_no_further(db, make_run, monkeypatch):
    """Past the rows a filtered list counts there may be more: "there is no page" was wrong."""
    from runs.admin import pagination

    monkeypatch.setattr(pagination, "COUNT_CAP", 60)
    viewer = staff_client("viewer", "view_tenderrun")
    for _ in range(120):
        make_run(status="success")
    html = viewer.get(f"{LIST}?status=success&p=3", follow=True).content.decode()
    assert "Page 3 is past the first 60 rows this list pages through: filter or search" in html
    for page in ("0", "-1"):  # before the first, not past the counted rows
        html = viewer.get(f"{LIST}?status=success&p={page}", follow=True).content.decode()
        assert f"There is no page {page} of this list" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_page_the_estimate_promised_but_a_prune_emptied_is_said(make_run, monkeypatch):
    """The unfiltered list's count is the planner's estimate, which lags a prune until the
    next ANALYZE: its last pages were blank, without a word."""
    from django.db import connection

    from runs.admin import pagination
    from runs.models import TenderRun

    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 100)
    runs = [make_run(status="success") for _ in range(160)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tender_runs")
    TenderRun.objects.filter(pk__in=[run.pk for run in runs[:120]]).delete()
    viewer = staff_client("viewer", "view_tenderrun")
    html = viewer.get(f"{LIST}?p=3", follow=True).content.decode()
    assert "about 160" in html and "There is no page 3 of this list" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_estimated_list_pages_and_sorts_only_where_an_index_leads(make_run, monkeypatch):
    """The unfiltered list linked its last pages and sorted by any column: OFFSET or a sort
    over the whole table (7.5 s for the last page, 3 to 4 s a sort at 3 M runs)."""
    from django.db import connection

    from runs.admin import pagination

    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 100)
    monkeypatch.setattr(pagination, "COUNT_CAP", 60)
    for n in range(160):
        make_run(status="success", started_ago=timedelta(minutes=n + 1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tender_runs")
    viewer = staff_client("viewer", "view_tenderrun")
    html = viewer.get(LIST).content.decode()
    assert "about 160" in html
    assert re.findall(r'href="\?p=(\d+)"', html) == ["2"]  # the first 60 rows' pages
    assert len(re.findall(r'<th scope="col" class="sortable', html)) == 1  # "started at"
    html = viewer.get(f"{LIST}?p=4", follow=True).content.decode()
    assert "Page 4 is past the first 60 rows this list pages through: filter or search" in html
    for sort in ("2", "3", "-9", "9.2"):  # status, project, finish: ignored, not sorted
        response = viewer.get(f"{LIST}?o={sort}")
        assert response.status_code == 200
        starts = [run.started_at for run in response.context["cl"].result_list]
        assert len(starts) == 50 and starts == sorted(starts, reverse=True), sort


@pytest.mark.parametrize(
    "query",
    [
        "started_from=bad",
        "liveness=bogus",
        "audit=any&audit_day=notaday",
        "audit_day=2026-12-01",  # a day of nothing: it exported every run
        "message__regex=(",
        "action=abc",  # Django skips a filter that offers nothing: this exported every run
        "audit=bogus",
    ],
)
def test_an_export_with_an_ignored_filter_goes_back_to_the_list(db, make_run, query):
    viewer = staff_client("viewer", "view_tenderrun")
    make_run(status="failed")
    response = viewer.get(f"{EXPORT}?{query}")
    assert response.status_code == 302 and response["Location"].startswith(LIST)
    assert "export" not in response["Location"]
    page = viewer.get(response["Location"], follow=True)
    html = page.content.decode()
    assert page.status_code == 200 and "Ignored" in html
    assert html.count("Ignored") == 1  # said once, by the list


def test_an_export_with_a_nul_byte_goes_back_to_the_list(db, make_run):
    viewer = staff_client("viewer", "view_tenderrun")
    make_run(status="failed")
    response = viewer.get(f"{EXPORT}?status=failed&kind={quote(chr(0))}")
    assert response.status_code == 302 and response["Location"] == f"{LIST}?status=failed"


def test_a_hand_written_equality_on_a_filtered_field_is_kept(superuser_client, db):
    # The alert log filters by channel and status: ?status=failed is that filter's question.
    response = superuser_client.get("/admin/runs/alertdelivery/?status=failed")
    assert response.status_code == 200
    assert superuser_client.get("/admin/runs/alertdelivery/?status__regex=(").status_code == 302
