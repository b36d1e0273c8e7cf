"""The admin when the database is in trouble: a table locked past the lock wait, a statement
refused by a trigger of the backend's. A 503 page that says so, nothing changed."""

import psycopg
import pytest
from django.db import connection

from runs.models import MaintenanceAction
from tests.conftest import confirmed_mark_failed, statuses
from tests.processes import current_database_url, refused_updates

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LIST = "/admin/runs/tenderrun/"


@pytest.fixture
def short_lock_wait(monkeypatch):
    monkeypatch.setattr("runs.maintenance.db.LOCK_WAIT", "300ms")
    yield
    with connection.cursor() as cursor:  # the session's setting would outlive the test
        cursor.execute("SELECT set_config('lock_timeout', '0', false)")


def test_a_table_locked_past_the_wait_is_a_503_page_not_a_hung_worker(
    admin_client, make_run, short_lock_wait
):
    make_run()
    with psycopg.connect(current_database_url()) as migration:  # the backend's ALTER TABLE
        migration.execute("LOCK TABLE tender_runs IN ACCESS EXCLUSIVE MODE")
        response = admin_client.get(LIST)
    assert response.status_code == 503 and response["Retry-After"] == "10"
    html = response.content.decode()
    assert 'id="database-trouble"' in html and "Traceback" not in html
    assert admin_client.get(LIST).status_code == 200  # the lock is gone: as before


def test_the_503_page_holds_under_a_sub_path_and_in_the_language_asked_for(
    admin_client, make_run, short_lock_wait
):
    make_run()
    with psycopg.connect(current_database_url()) as migration:
        migration.execute("LOCK TABLE tender_runs IN ACCESS EXCLUSIVE MODE")
        mounted = admin_client.get(LIST, SCRIPT_NAME="/tenderops")  # behind a proxy's prefix
        chinese = admin_client.get(LIST, HTTP_ACCEPT_LANGUAGE="zh-hans")
        english = admin_client.get(LIST, HTTP_ACCEPT_LANGUAGE="en")
    assert mounted.status_code == 503
    assert "数据库繁忙或不可用" in chinese.content.decode()
    assert "The database is busy or unavailable" in english.content.decode()


def test_a_change_the_database_refuses_is_a_503_page_and_changes_nothing(admin_client, make_run):
    run = make_run()
    with refused_updates("tender_runs"):
        response = admin_client.post(LIST, confirmed_mark_failed(run.pk, reason="worker gone"))
    assert response.status_code == 503
    assert 'id="database-trouble"' in response.content.decode()
    assert statuses(run) == ["running"]
    assert not MaintenanceAction.objects.exists()
