"""Projects: searched by the admin's own autocomplete (exact id or name), a page per project
with its runs, and a link back from each run."""

import json

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.admin import pagination
from runs.models import TenderProject, TenderRun
from tests.console import LIST, staff_client

AUTOCOMPLETE = "/admin/autocomplete/?app_label=runs&model_name=tenderrun&field_name=project"


@pytest.fixture
def viewer(db):
    return staff_client("viewer", "view_tenderrun")


@pytest.fixture
def projects(project):
    others = [
        TenderProject.objects.create(id=f"tp_other{n:04d}", kb_id="kb", name=f"学校扩建工程 #{n}")
        for n in range(30)
    ]
    return project, others


def search(client, term: str) -> dict:
    response = client.get(f"{AUTOCOMPLETE}&term={term}")
    assert response.status_code == 200
    return json.loads(response.content)


def test_projects_are_found_by_name_or_exact_id(viewer, projects):
    road, schools = projects
    by_name = search(viewer, "道路")
    assert by_name["results"] == [{"id": road.pk, "text": road.name}]
    by_id = search(viewer, schools[7].pk)
    assert by_id["results"] == [{"id": schools[7].pk, "text": "学校扩建工程 #7"}]
    assert search(viewer, "tp_other")["results"] == []  # an id matches whole, never a prefix
    many = search(viewer, "学校")
    assert len(many["results"]) == 20 and many["pagination"]["more"] is True


def test_a_capped_project_count_says_more_than(viewer, projects, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 10)
    html = viewer.get("/admin/runs/tenderproject/?q=学校").content.decode()
    assert "more than 10 tender projects" in html and "11 tender projects" not in html


def test_an_id_search_is_one_primary_key_lookup(viewer, projects):
    road, _schools = projects
    with CaptureQueriesContext(connection) as captured:
        search(viewer, road.pk)
    lookups = [q["sql"] for q in captured if 'FROM "tender_projects"' in q["sql"]]
    assert lookups and all('"tender_projects"."id" = ' in sql for sql in lookups), lookups
    assert not any("LIKE" in sql for sql in lookups)


def test_the_project_filter_is_a_search_box_with_the_chosen_project(viewer, projects, make_run):
    road, _schools = projects
    run = make_run()
    html = viewer.get(f"{LIST}?project={road.pk}&status=running").content.decode()
    assert 'class="admin-autocomplete"' in html and 'data-field-name="project"' in html
    assert f'<option value="{road.pk}" selected>{road.name}</option>' in html
    assert '<input type="hidden" name="status" value="running">' in html  # kept on a new choice
    assert f'href="/admin/runs/tenderproject/{quote(road.pk)}/change/"' in html
    assert run.pk in html
    assert "学校扩建工程" not in html  # no list of recent projects any more


def test_a_project_that_is_not_there_gets_no_project_page_link(viewer, projects):
    html = viewer.get(f"{LIST}?project=tp_gone").content.decode()
    assert 'id="project-page-link"' not in html and "tp_gone" in html
    road, _schools = projects
    assert 'id="project-page-link"' in viewer.get(f"{LIST}?project={road.pk}").content.decode()


def test_a_projects_page_lists_its_runs_and_each_run_links_back(viewer, projects, make_run):
    road, _schools = projects
    runs = [make_run(message=f"第 {n} 个") for n in range(3)]
    page = viewer.get(f"/admin/runs/tenderproject/{road.pk}/change/").content.decode()
    assert all(f"/admin/runs/tenderrun/{quote(run.pk)}/change/" in page for run in runs)
    assert f"{LIST}?project={road.pk}" in page
    detail = viewer.get(f"{LIST}{runs[0].pk}/change/").content.decode()
    assert (
        f'href="/admin/runs/tenderproject/{quote(road.pk)}/change/" id="run-project-page"' in detail
    )
    assert f'href="{LIST}?project={road.pk}" id="run-project-runs"' in detail


def test_projects_are_read_only_and_need_a_view_permission(projects):
    road, _schools = projects
    nobody = staff_client("nobody")
    assert nobody.get(f"{AUTOCOMPLETE}&term=道路").status_code == 403
    assert nobody.get("/admin/runs/tenderproject/").status_code == 403
    viewer = staff_client("viewer", "view_tenderrun")
    assert viewer.get("/admin/runs/tenderproject/").status_code == 200
    assert viewer.post(f"/admin/runs/tenderproject/{road.pk}/change/", {}).status_code == 403
    assert viewer.get("/admin/runs/tenderproject/add/").status_code == 403


def test_a_projects_name_and_its_runs_kinds_are_shown_never_obeyed(viewer, make_run):
    odd = TenderProject.objects.create(
        id="tp_odd", kb_id="kb\x1b[2J", name="Odd project \u202eevil\u202c 🧨 <script>x</script>"
    )
    run = make_run(kind="kind\x1b[31mRED\u202eevil")
    TenderRun.objects.filter(pk=run.pk).update(project=odd)
    pages = [
        viewer.get("/admin/runs/tenderproject/tp_odd/change/").content.decode(),
        viewer.get("/admin/runs/tenderproject/").content.decode(),
        json.dumps(search(viewer, "Odd"), ensure_ascii=False),
    ]
    for page in pages:
        assert "\u202e" not in page and "\x1b" not in page
        assert "Odd project <U+202E>evil<U+202C> 🧨" in page.replace("&lt;", "<").replace(
            "&gt;", ">"
        )
    assert "<script>x" not in pages[0] + pages[1]  # escaped in HTML; select2 escapes its text
    assert "kind<U+001B>[31mRED<U+202E>evil" in pages[0].replace("&lt;", "<").replace("&gt;", ">")


def test_a_huge_project_name_is_cut_in_titles_and_search(viewer):
    name = "城市更新" + "工程" * 5_000
    TenderProject.objects.create(id="tp_huge", kb_id="kb", name=name)
    (found,) = search(viewer, "城市更新")["results"]
    assert found["text"].endswith("…") and len(found["text"]) == 120
    page = viewer.get("/admin/runs/tenderproject/tp_huge/change/").content.decode()
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "城市更新工程" in title and len(title) < 300  # was 10,000 characters
