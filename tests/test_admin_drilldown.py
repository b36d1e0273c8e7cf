"""Drill-down: every number on the stats page that counts runs links to the runs list of
exactly those runs; the trend of runs tenderops failed; the cause of a failure in the list."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db.models import F
from django.utils import timezone

from runs.admin.links import runs_list_url
from runs.maintenance import collect_stats, db_now, fail_stuck_runs
from runs.maintenance.stats_snapshot import refresh_stats_snapshot
from runs.models import Actor, TenderRun
from tests.console import LIST, STATS, count_links, list_count, staff_client

MIN = timedelta(minutes=1)


@pytest.fixture
def viewer(db):
    return staff_client("viewer", "view_tenderrun")


@pytest.fixture
def busy_day(make_run):
    """Runs of two kinds and every status, some failed by tenderops, some with errors."""
    runs = []
    for n in range(3):
        runs.append(make_run(status="success", started_ago=(40 + n) * MIN))
        runs.append(
            make_run(
                status="success", kind="review", run_type="review", started_ago=2 * MIN * (n + 30)
            )
        )
    runs.append(make_run(status="failed", started_ago=50 * MIN, error="LLM 调用超时\n堆栈…"))
    runs.append(make_run(status="failed", started_ago=55 * MIN, error="LLM 调用超时\n另一堆栈"))
    runs.append(make_run(status="failed", started_ago=3 * 24 * 60 * MIN, error=None))
    runs.append(make_run(status="pending", started_ago=MIN))
    runs.append(make_run(status="cancelled", started_ago=5 * MIN))
    stuck = [
        make_run(started_ago=(20 + n) * MIN, kind="review", run_type="review") for n in range(2)
    ]
    runs.append(make_run(started_ago=2 * MIN))  # running, not stuck
    TenderRun.objects.filter(status="success").update(
        finished_at=F("started_at") + timedelta(minutes=3)
    )
    TenderRun.objects.filter(status="failed").update(finished_at=F("started_at") + MIN)
    fail_stuck_runs(actor=Actor.SCHEDULE)
    stuck.append(make_run(started_ago=30 * MIN))  # stuck now, not failed yet
    return runs + stuck


def test_every_count_on_the_stats_page_links_to_a_list_of_that_many_runs(
    viewer, busy_day, make_run
):
    # Successes no duration can be read from (no finish; a finish before the start): the
    # durations' counts left them out, and their lists did not.
    make_run(status="success", kind="review", run_type="review", started_ago=45 * MIN)
    backwards = make_run(status="success", kind="review", run_type="review", started_ago=MIN)
    TenderRun.objects.filter(pk=backwards.pk).update(finished_at=F("started_at") - MIN)
    html = viewer.get(STATS).content.decode()
    links = count_links(html)
    assert len(links) >= 40  # table cells and totals, cards, bars, rate points, errors
    queries = {frozenset(parse_qs(urlsplit(href).query)) for href, _count in links}
    for expected in (
        {"status", "kind"},
        {"status"},
        {"kind"},
        {"stuck"},
        {"status", "started_from", "started_to"},
        {"audit", "audit_day", "kind"},
        {"status", "started", "error"},
        {"status", "started"},
        {"status", "kind", "started"},  # the durations'
    ):
        assert frozenset(expected) in queries, expected
    for href, count in links:
        page = viewer.get(href)
        assert page.status_code == 200, href
        assert list_count(page.content.decode()) == count, href


def test_counts_of_runs_without_a_kind_link_to_exactly_those_runs(viewer, make_run):
    """Neither kind nor run_type: shown "–", counted apart, and its links keep that apart
    (they once dropped the kind and listed every run of the status)."""
    for status in ("running", "running", "success"):
        make_run(status=status, kind=None, run_type="", started_ago=40 * MIN)
    for status in ("running", "success", "success"):
        make_run(status=status, kind="review", run_type="review", started_ago=40 * MIN)
    TenderRun.objects.filter(status="success").update(finished_at=F("started_at") + MIN)
    html = viewer.get(STATS).content.decode()
    links = count_links(html)
    kindless = [(href, n) for href, n in links if "kind=__none__" in href.replace("&amp;", "&")]
    assert len(kindless) >= 4, links  # the table's cells and total, the silent count
    for href, count in links:
        assert list_count(viewer.get(href).content.decode()) == count, href
    page = viewer.get(runs_list_url(status="running", kind="__none__")).content.decode()
    assert list_count(page) == 2 and "(no kind)" in page


def test_counts_of_runs_with_an_empty_status_link_to_exactly_those_runs(viewer, make_run):
    """An empty status (no CHECK constraint forbids it) is counted apart; its links dropped
    the status ("" means no filter) and listed every run."""
    make_run(status="", started_ago=40 * MIN)
    for status in ("running", "success", "failed"):
        make_run(status=status, started_ago=40 * MIN)
    links = count_links(viewer.get(STATS).content.decode())
    blank = [(href, n) for href, n in links if "status=__blank__" in href]
    assert len(blank) >= 2, links  # the row's cells and total
    # The day's bar adds up the unknown statuses (the backend may write thousands of them).
    assert any("status=__other__" in href and n == 1 for href, n in links), links
    for href, count in links:
        assert list_count(viewer.get(href).content.decode()) == count, href


def test_stored_values_that_read_as_the_lists_keywords_link_to_exactly_their_runs(viewer, make_run):
    """A status stored as "__finished__" linked to every finished run, a kind "__none__" to
    the runs without a kind, an error "__none__" to those without an error (the attacker)."""
    make_run(status="__finished__", started_ago=40 * MIN)
    make_run(status="=odd", started_ago=40 * MIN)
    for _ in range(3):
        make_run(status="failed", kind="__none__", started_ago=40 * MIN, error="__none__")
    make_run(status="failed", started_ago=40 * MIN, error=None)
    make_run(status="success", started_ago=40 * MIN)
    links = count_links(viewer.get(STATS).content.decode())
    hrefs = " ".join(href.replace("&amp;", "&") for href, _n in links)
    assert "status=%3D__finished__" in hrefs and "kind=%3D__none__" in hrefs
    assert "error=%3D__none__" in hrefs and "status=%3D%3Dodd" in hrefs
    for href, count in links:
        assert list_count(viewer.get(href).content.decode()) == count, href
    page = viewer.get(runs_list_url(status="=__finished__")).content.decode()
    assert list_count(page) == 1 and "__finished__" in page


def test_status_kind_table_has_totals_per_status_and_kind(viewer, busy_day):
    stats = collect_stats()
    assert stats.status_total("success") == 6
    assert stats.kind_total("review") == 5
    assert stats.total == len(busy_day)
    html = viewer.get(STATS).content.decode()
    assert f'data-count="{stats.total}"' in html
    assert f'href="{runs_list_url(status="success")}" class="count-link" data-count="6"' in (
        html.replace("&amp;", "&")
    )


def test_runs_failed_by_tenderops_per_day_and_kind(viewer, busy_day):
    today = timezone.localtime(db_now()).date()
    trend = dict(collect_stats().failed_by_tenderops)
    assert len(trend) == 30 and trend[today] == {"review": 2}
    listed = viewer.get(runs_list_url(audit="any", audit_day=today, kind="review"))
    html = listed.content.decode()
    assert list_count(html) == 2
    failed_by_monitor = TenderRun.objects.filter(message="任务异常终止：超时未完成")
    assert all(run.pk in html for run in failed_by_monitor)
    yesterday = viewer.get(runs_list_url(audit="any", audit_day=today - timedelta(days=1)))
    assert list_count(yesterday.content.decode()) == 0


def test_a_run_failed_twice_in_a_day_is_one_run_failed_that_day(viewer, make_run, settings):
    """The count said 2 where its link listed the one run (found by the odd-rows attacker)."""
    from runs.maintenance import fail_stuck_runs
    from runs.models import Actor

    settings.TENDEROPS_STUCK_RULE = "age"  # restarting is no sign of life by age
    run = make_run(started_ago=40 * MIN, kind="twice")
    assert fail_stuck_runs(actor=Actor.CLI, timeout_minutes=1).fixed_count == 1
    TenderRun.objects.filter(pk=run.pk).update(status="running")
    assert fail_stuck_runs(actor=Actor.CLI, timeout_minutes=1).fixed_count == 1
    today = timezone.localtime(db_now()).date()
    assert dict(collect_stats().failed_by_tenderops)[today] == {"twice": 1}
    listed = viewer.get(runs_list_url(audit="any", audit_day=today, kind="twice"))
    assert list_count(listed.content.decode()) == 1


def test_top_errors_link_to_runs_with_that_error(viewer, busy_day):
    window = next(w for w in collect_stats().failures if w.window == "24h")
    assert window.top_errors[0] == ("任务超时未完成", 2)
    by_text = dict(window.top_errors)
    assert by_text["LLM 调用超时\n堆栈…"] == 1
    html = viewer.get(runs_list_url(status="failed", started="24h", error="任务超时未完成"))
    assert list_count(html.content.decode()) == 2
    no_error = viewer.get(runs_list_url(status="failed", error="__none__")).content.decode()
    assert list_count(no_error) == 1


def test_the_error_filter_reads_the_last_30_days_unless_given_a_range(viewer, make_run):
    old = make_run(status="failed", started_ago=40 * 24 * 60 * MIN, error="旧错误")
    recent = make_run(status="failed", started_ago=MIN, error="旧错误")
    windowed = viewer.get(runs_list_url(error="旧错误")).content.decode()
    assert recent.pk in windowed and old.pk not in windowed
    ranged = viewer.get(runs_list_url(error="旧错误", started_from="2000-01-01")).content.decode()
    assert recent.pk in ranged and old.pk in ranged


@pytest.mark.parametrize("search", ["error=旧错误", "q=旧错误"])
def test_a_date_range_left_blank_keeps_a_text_search_to_30_days(viewer, make_run, search):
    """The range form sends its empty boxes: that is no range, and no scan of every run's
    text."""
    old = make_run(status="failed", started_ago=40 * 24 * 60 * MIN, error="旧错误")
    recent = make_run(status="failed", started_ago=MIN, error="旧错误")
    url = f"{runs_list_url()}?{search}&started_from=&started_to="
    html = viewer.get(url).content.decode()
    assert recent.pk in html and old.pk not in html


def test_the_failed_list_shows_the_cause_under_the_message(viewer, make_run):
    make_run(
        status="failed", message="任务失败", error="文档解析失败：不支持的文件格式\nTraceback …"
    )
    html = viewer.get(f"{LIST}?status=failed").content.decode()
    assert '<span class="run-cause" title="error">文档解析失败：不支持的文件格式</span>' in html
    assert "Traceback" not in html


def test_the_kind_filter_lists_each_kind_once(viewer, make_run):
    make_run(kind="review", run_type="review")
    html = viewer.get(f"{LIST}?kind=review").content.decode()
    start = html.index('<details data-filter-title="kind"')
    section = html[start : html.index("</details>", start)]
    assert section.count(">review</a>") == 1
    assert section.count('class="selected"') == 1


def test_trend_charts_and_a_duration_axis_in_minutes(viewer, busy_day):
    html = viewer.get(STATS).content.decode()
    for chart in ("daily-chart", "failure-rate-chart", "failed-by-tenderops-chart"):
        assert f'id="{chart}"' in html
    duration = html[html.index('id="duration-chart"') :]
    duration = duration[: duration.index("</svg>")]
    assert ">minutes</text>" in duration
    ticks = re.findall(r'text-anchor="middle">(\d+)</text>', duration)
    assert ticks[0] == "0" and len(ticks) >= 3
    steps = {int(b) - int(a) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1  # evenly spaced, round minutes


def test_the_stats_tables_show_the_kinds_with_the_most_runs(viewer, make_run, monkeypatch):
    """The backend may write any kind: a column and a row for each of 40,000 made a 44 MB
    page that outlived gunicorn's timeout (found by the attacker)."""
    from runs.admin import views

    monkeypatch.setattr(views, "MAX_SHOWN_KINDS", 2)
    for kind, runs in (("few", 1), ("most", 4), ("some", 2), ("more", 3)):
        for _ in range(runs):
            run = make_run(status="success", kind=kind, started_ago=40 * MIN)
            TenderRun.objects.filter(pk=run.pk).update(finished_at=F("started_at") + MIN)
        make_run(status="running", kind=kind, started_ago=3 * 60 * MIN)  # silent, each kind
    html = viewer.get(STATS).content.decode()
    table = html[
        html.index('id="status-kind-table"') : html.index(
            "</table>", html.index('id="status-kind-table"')
        )
    ]
    heads = re.findall(r"<th>([^<]*)</th>", table.split("</thead>")[0])
    assert heads[1:] == ["more", "most", "total"] and "2 other kinds</th>" in table
    success = re.search(r">success<.*?</tr>", table, re.S).group(0)
    cells = re.findall(r'class="numeric[^"]*">(?:<a[^>]*>)?([\d,]+)', success)
    assert cells == ["3", "4", "3", "10"]  # more, most, the other two, the total
    durations = html[html.index('id="duration-table"') :]
    assert "1 kind with fewer successful runs is left out" not in durations
    assert "2 kinds with fewer successful runs are left out" in durations
    assert "2 kinds with fewer silent, waiting or late runs are left out" in html


def test_the_stats_page_adds_up_the_statuses_and_failed_kinds_it_leaves_out(
    viewer, make_run, monkeypatch
):
    """A status and a kind failed by tenderops are whatever the backend wrote: 20,000
    statuses made a 691 MB page, 3,000 failed kinds a legend of 1.1 MB (the attacker)."""
    from runs.admin import views

    monkeypatch.setattr(views, "MAX_SHOWN_STATUSES", 3)
    monkeypatch.setattr(views, "MAX_SHOWN_KINDS", 2)
    for status, runs in (("odd-1", 1), ("odd-2", 3), ("odd-3", 2), ("odd-4", 1)):
        for _ in range(runs):
            make_run(status=status, kind="review", started_ago=40 * MIN)
    for kind, runs in (("k-few", 1), ("k-most", 3), ("k-some", 2)):
        for _ in range(runs):
            make_run(kind=kind, started_ago=3 * 60 * MIN)
    fail_stuck_runs(actor=Actor.CLI)
    html = viewer.get(STATS).content.decode()
    table = html[html.index('id="status-kind-table"') :]
    table = table[: table.index("</table>")]
    # Failed, the one known status here, and room for the two unknown ones with most runs.
    assert "odd-2" in table and "odd-3" in table and "odd-1" not in table and "odd-4" not in table
    other = re.search(r'<tr id="other-statuses">.*?</tr>', table, re.S).group(0)
    assert "2 other statuses" in other and re.findall(r">(\d+)</td>", other)[-1] == "2"
    legend = html[html.index('id="failed-by-tenderops-chart"') :]
    assert "k-most" in legend and "k-some" in legend and "k-few" not in legend
    assert "and 1 other kind<" in legend
    chart = legend[: legend.index("</svg>")]
    assert "other kinds: 1</title>" in chart


def test_the_daily_chart_s_legend_names_the_unknown_statuses_part_when_it_has_one(viewer, make_run):
    """Its bars drew them in a colour no legend named (the new operator)."""

    def legend() -> str:
        html = viewer.get(STATS).content.decode()
        chart = html[html.index('id="daily-chart"') :]
        return chart[chart.index('class="chart-legend"') :].split("</p>")[0]

    make_run(status="success", started_ago=40 * MIN)
    assert "success" in legend() and "chart-other" not in legend()
    make_run(status="zombie", started_ago=40 * MIN)
    refresh_stats_snapshot()  # the tables and charts are the snapshot's
    assert 'legend-swatch chart-other"></span>other (unknown)' in legend()


def test_the_durations_chart_labels_a_blank_kind_as_its_table_does(viewer, make_run):
    """A bar with no label beside the table's "–" (the new operator)."""
    run = make_run(status="success", kind="", run_type="", started_ago=40 * MIN)
    TenderRun.objects.filter(pk=run.pk).update(finished_at=F("started_at") + MIN)
    refresh_stats_snapshot()
    html = viewer.get(STATS).content.decode()
    chart = html[html.index('id="duration-chart"') :]
    labels = re.findall(r'<text class="chart-label"[^>]*text-anchor="end">([^<]*)</text>', chart)
    assert "–" in labels and "" not in labels


def test_the_durations_say_when_they_come_from_the_most_recent_runs_only(
    viewer, make_run, monkeypatch
):
    """The durations' read is bounded (50,000 runs): at 10 M runs that is two days, not the
    30 the title says, and fewer than the list behind a count shows."""
    from runs.admin import views
    from runs.maintenance import stats

    for _ in range(3):
        run = make_run(status="success", kind="review", started_ago=40 * MIN)
        TenderRun.objects.filter(pk=run.pk).update(finished_at=F("started_at") + MIN)
    monkeypatch.setattr(stats, "DURATION_SAMPLE", 4)
    monkeypatch.setattr(views, "DURATION_SAMPLE", 4)
    assert 'id="duration-sample"' not in viewer.get(STATS).content.decode()
    monkeypatch.setattr(stats, "DURATION_SAMPLE", 2)
    monkeypatch.setattr(views, "DURATION_SAMPLE", 2)
    html = viewer.get(STATS).content.decode()
    assert "these come from the 2 most recent" in html
