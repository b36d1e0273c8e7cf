"""Every admin page of tenderops, as a Chinese browser renders it, is Chinese: no English unit,
no English status word, no untranslated message. What is left in Latin letters is data or a
name (run and project ids, kinds, the zone, tenderops, CSV, p50...), all listed below."""

import re
from datetime import timedelta

import pytest
from django.db.models import F

from runs.maintenance import fail_stuck_runs
from runs.models import Actor, MaintenanceAction, TenderRun
from runs.vocabulary import KNOWN_KINDS, KNOWN_RUN_TYPES
from tests.browser.conftest import signed_in

MIN = timedelta(minutes=1)
LIST = "/admin/runs/tenderrun/"
# Names and identifiers, never words to translate (matched as whole words: a CJK character
# next to them counts as a word's edge).
NAMES = [
    r"tr_[0-9a-f…]*",
    r"tp_[0-9a-f…]*",
    *sorted({*KNOWN_KINDS, *KNOWN_RUN_TYPES}, key=len, reverse=True),
    r"Asia/Shanghai",
    r"UTC",
    r"tenderops",
    r"TENDEROPS_\w+",
    r"CSV",
    r"API",
    r"ID",
    r"JSON",
    r"p50",
    r"p95",
    r"kb_\w+",  # the fixture project's knowledge base id
    r"operator",  # the user's name
    r"OPERATOR",
    r"python manage\.py (qcluster|cleanup_stuck_runs --auto-fix)",
]
UNITS_AND_STATUSES = re.compile(
    r"^(min|minutes?|s|sec|seconds?|h|hours?|d|days?|ago|pending|running|success|failed)$", re.I
)
# Every text of the page (hidden ones and the charts' included) but code and JSON, one a
# line; the tooltips; the title.
PAGE_TEXT = """() => {
    const texts = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        // Text marked English on purpose: the language switch names English in itself.
        if (node.parentElement.closest("script, style, pre, code, template, [lang=en]")) continue;
        // A kind's <wbr>s split it into text nodes; its reader sees one word.
        if (node.previousSibling && node.previousSibling.nodeName === "WBR") {
            texts[texts.length - 1] += node.textContent;
        } else {
            texts.push(node.textContent);
        }
    }
    for (const name of ["title", "placeholder", "aria-label"]) {
        document.querySelectorAll(`[${name}]`).forEach(el => texts.push(el.getAttribute(name)));
    }
    return texts.join("\\n");
}"""


@pytest.fixture
def runs(make_run):
    made = [make_run(status="success", started_ago=(30 + n) * MIN) for n in range(3)]
    made.append(
        make_run(status="failed", started_ago=50 * MIN, message="任务失败", error="解析失败")
    )
    made.append(make_run(status="pending", started_ago=MIN))
    TenderRun.objects.exclude(status="pending").update(finished_at=F("started_at") + 3 * MIN)
    made += [make_run(started_ago=(20 + n) * MIN, message="提取中...") for n in range(2)]
    fail_stuck_runs(actor=Actor.SCHEDULE)
    made.append(make_run(started_ago=25 * MIN, message="生成中..."))  # stuck now
    made.append(make_run(started_ago=2 * MIN, message="提取中..."))  # running, young
    return made


def english_left(text: str) -> list[str]:
    for name in NAMES:
        text = re.sub(rf"(?<![A-Za-z0-9_])(?:{name})(?![A-Za-z0-9_])", " ", text)
    return re.findall(r"[A-Za-z]+", text)


def test_every_page_in_chinese_has_no_english_left(
    browser, live_server, superuser, runs, settings, artifacts
):
    settings.TIME_ZONE = "Asia/Shanghai"
    action = MaintenanceAction.objects.get()
    young, stuck = runs[-1], runs[-2]
    project = stuck.project_id
    pages = [
        "/admin/",
        LIST,
        f"{LIST}?status=failed",
        f"{LIST}?stuck=yes&started=24h",
        f"{LIST}?project={project}",
        f"{LIST}?audit={action.pk}",
        f"{LIST}?started_from=2026-01-01&started_to=2999-01-01&kind=review",
        f"{LIST}{young.pk}/change/",
        f"{LIST}{runs[0].pk}/change/",
        f"{LIST}stats/",
        f"{LIST}cleanup/",
        "/admin/runs/maintenanceaction/",
        f"/admin/runs/maintenanceaction/{action.pk}/change/",
        "/admin/runs/tenderproject/",
        f"/admin/runs/tenderproject/{project}/change/",
    ]
    page = signed_in(browser, live_server.url, "zh-CN")
    found = {}
    for url in pages:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        assert page.title().endswith("| tenderops"), url
        assert page.inner_text("#time-zone") == "时间按 Asia/Shanghai (UTC+08:00) 显示", url
        left = english_left(page.evaluate(PAGE_TEXT))
        if left:
            found[url] = left
    # The confirmation page of "mark failed", with a young running run in the selection.
    page.goto(f"{live_server.url}{LIST}")
    for run in (young, stuck):
        page.locator(f'tr:has(span[title="{run.pk}"]) input.action-select').check()
    page.select_option("select[name=action]", "mark_failed")
    page.click("button[name=index]")
    page.wait_for_selector("#young-running")
    page.screenshot(path=artifacts / "confirmation-zh.png")
    if left := english_left(page.evaluate(PAGE_TEXT)):
        found["confirmation"] = left
    assert found == {}
    units = [word for words in found.values() for word in words if UNITS_AND_STATUSES.match(word)]
    assert units == []
