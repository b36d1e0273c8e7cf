"""A run's page, whatever the backend wrote in it: megabytes of text are shown by their
beginning, and its audit history reads only the beginnings of what was overwritten."""

import re
from datetime import timedelta

import pytest
from django.db import connection

from runs.maintenance import fail_stuck_runs
from runs.models import Actor, FailedRunRecord, TenderRun
from tests.console import LIST, staff_client

pytestmark = pytest.mark.postgres


def test_a_runs_page_shows_the_beginning_of_megabytes_of_text(make_run):
    """A 45 MB message, a 20 MB error and a 9 MB meta made a 157 MB page in 7.7 s."""
    from runs.limits import SHOWN_TEXT_CHARS

    big = SHOWN_TEXT_CHARS * 3
    run = make_run(message="提" * big, error="e" * big, meta_json={"log": "m" * big})
    viewer = staff_client(
        "viewer", "view_tenderrun", "view_maintenanceaction", "view_failedrunrecord"
    )
    page = viewer.get(f"{LIST}{run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert len(html) < 6 * SHOWN_TEXT_CHARS  # three columns' beginnings, not 900,000 chars
    assert "提" * SHOWN_TEXT_CHARS in html and "提" * (SHOWN_TEXT_CHARS + 1) not in html
    assert html.count(f"The first 100,000 of its {big:,} characters are shown.") == 2
    as_stored = big + len('{"log": ""}')  # jsonb's text
    assert f"The first 100,000 of its {as_stored:,} characters are shown." in html
    # Failed, its audit history reads only the beginnings of what was overwritten (three
    # failings of 35 MB of text took 4.3 s: the reviewer).
    from django.test.utils import CaptureQueriesContext

    fail_stuck_runs(actor=Actor.CLI, timeout_minutes=1)
    with CaptureQueriesContext(connection) as queries:
        assert viewer.get(f"{LIST}{run.pk}/change/").status_code == 200
    audit = [q["sql"] for q in queries if 'FROM "tenderops_failed_run"' in q["sql"]]
    assert audit and all(
        re.sub(r"LEFT\([^)]*\)", "", sql).count("previous_message") == 0 for sql in audit
    ), audit
    action = FailedRunRecord.objects.get(run_id=run.pk).action_id
    with CaptureQueriesContext(connection) as queries:
        inline = viewer.get(f"/admin/runs/maintenanceaction/{action}/change/")
    html = inline.content.decode()
    cell = re.search("(提+[^<]*)</td>", html).group(1)
    assert cell == "提" * 199 + "…", (len(cell), cell[-5:])
    audit = [q["sql"] for q in queries if 'FROM "tenderops_failed_run"' in q["sql"]]
    assert all(re.sub(r"LEFT\([^)]*\)", "", sql).count("previous_error") == 0 for sql in audit)

    small = make_run(meta_json={"step": 2})
    shown = viewer.get(f"{LIST}{small.pk}/change/").content.decode()
    assert "characters are shown" not in shown and "&quot;step&quot;: 2" in shown


def test_the_audit_history_is_shown_to_those_who_may_view_the_audit(make_run):
    run = make_run(started_ago=timedelta(hours=2), message="progress line 42")
    fail_stuck_runs(actor=Actor.CLI, timeout_minutes=1)
    action = FailedRunRecord.objects.get(run_id=run.pk).action_id
    page = f"{LIST}{run.pk}/change/"
    runs_only = staff_client("runs-only", "view_tenderrun")
    assert runs_only.get(f"/admin/runs/maintenanceaction/{action}/change/").status_code == 403
    hidden = runs_only.get(page).content.decode()
    # Who failed the run and what it overwrote (its message then) are the audit's.
    assert 'class="run-audit"' not in hidden and "progress line 42" not in hidden
    auditor = staff_client("auditor", "view_tenderrun", "view_maintenanceaction")
    shown = auditor.get(page).content.decode()
    assert 'class="run-audit"' in shown and "progress line 42" in shown


def test_the_audit_is_found_by_run_id_or_reason_and_says_who_from_where(make_run):
    from runs.maintenance import mark_runs_failed

    by_cli, by_hand = make_run(started_ago=timedelta(hours=2)), make_run(started_ago=timedelta(0))
    fail_stuck_runs(actor=Actor.CLI, username="deploy", timeout_minutes=1)
    hand = TenderRun.objects.filter(pk=by_hand.pk)
    mark_runs_failed(hand, actor=Actor.USER, username="li", reason="worker host rebooted")
    auditor = staff_client("auditor", "view_tenderrun", "view_maintenanceaction")
    audit = "/admin/runs/maintenanceaction/"

    def found(term: str) -> set[str]:
        page = auditor.get(audit, {"q": term}).content.decode()
        return set(re.findall(r"maintenanceaction/(\d+)/change/", page))

    cli_action = str(FailedRunRecord.objects.get(run_id=by_cli.pk).action_id)
    hand_action = str(FailedRunRecord.objects.get(run_id=by_hand.pk).action_id)
    assert found(by_cli.pk) == {cli_action}
    assert found("rebooted") == {hand_action}
    assert found("li") == {hand_action}
    assert "worker host rebooted" in auditor.get(audit).content.decode()  # the reason column
    history = auditor.get(f"{LIST}{by_cli.pk}/change/").content.decode()
    assert "deploy (command line)" in history
    assert "<td>li</td>" in auditor.get(f"{LIST}{by_hand.pk}/change/").content.decode()
