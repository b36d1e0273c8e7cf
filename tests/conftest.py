from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models.functions import Now
from django.db.models.signals import post_migrate
from django.utils import translation

from runs.maintenance.outcomes import StuckRun
from runs.models import Actor, RunObservation, TenderProject, TenderRun

# The API tests' shared fixtures (bearer, stuck, api_token).
pytest_plugins = ["tests.api_client"]

REPO = Path(__file__).resolve().parent.parent
# The live table's schema as the project carries it; the tests build their tables from it.
LIVE_SCHEMA = REPO / "runs" / "tender_live.sql"

_ids = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Django's deprecation warnings fail the test that meets them: the code must run on the
    next Django too (whichever warnings this version has: 5.2's name 6.0 and 6.1)."""
    from django.utils import deprecation

    for name in dir(deprecation):
        if name.startswith("RemovedInDjango"):
            config.addinivalue_line("filterwarnings", f"error::django.utils.deprecation.{name}")


def scheduled_ago(span: timedelta, using: str = "default") -> None:
    """Say the monitor's schedule was first made ``span`` ago (a fresh install's start)."""
    from runs.maintenance.heartbeat import MONITOR_SCHEDULED
    from runs.models import Heartbeat

    Heartbeat.objects.using(using).update_or_create(
        name=MONITOR_SCHEDULED, defaults={"last_finished_at": Now() - span}
    )


def _installed_long_ago(sender, using: str = "default", **kwargs) -> None:
    """After migrate, and after each flush of a transactional test (which runs post_migrate
    again, and so sync_schedules): the monitor was scheduled an hour ago. A test without a
    heartbeat then sees a stale monitor, never a "starting" one that depends on when its
    database was made; tests of the starting monitor call ``scheduled_ago``."""
    scheduled_ago(timedelta(hours=1), using)


# Connected after the app's own receiver (its ready()), so it runs after the schedules' sync.
post_migrate.connect(
    _installed_long_ago, sender=apps.get_app_config("runs"), dispatch_uid="tests-installed"
)


@pytest.fixture(autouse=True)
def default_language():
    """Every test starts in English: a request in Chinese must not leak into the next test
    (LocaleMiddleware leaves the language of its last request active in the thread)."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):032x}"


@pytest.fixture
def project(db) -> TenderProject:
    return TenderProject.objects.create(id=new_id("tp_"), kb_id="kb_1", name="市政道路改造工程")


RunFactory = Callable[..., TenderRun]


@pytest.fixture
def make_run(project) -> RunFactory:
    """Create a run whose ``started_at`` is ``started_ago`` before the database's clock."""

    def make(
        *,
        status: str = "running",
        started_ago: timedelta = timedelta(hours=1),
        run_type: str = "project_info",
        kind: str | None = "extract_project_info",
        **fields,
    ) -> TenderRun:
        run = TenderRun.objects.create(
            id=new_id("tr_"), project=project, run_type=run_type, kind=kind, status=status, **fields
        )
        TenderRun.objects.filter(pk=run.pk).update(started_at=Now() - started_ago)
        run.refresh_from_db()
        return run

    return make


def confirmed_mark_failed(*run_ids: str, reason: str) -> dict:
    """The admin's "mark failed" action as its confirmation page posts it, promise included."""
    from runs.admin.actions import MARK_FAILED, promise_for
    from runs.maintenance.selection import promise_of

    return {
        "promise": promise_for(promise_of(run_ids), MARK_FAILED),
        "action": "mark_failed",
        "index": "0",
        "_selected_action": list(run_ids),
        "confirm": "1",
        "reason": reason,
    }


def back_to_running(*run_ids: str) -> None:
    """Set runs running again, as tenderops never saw them: a test's reset between cases (a
    change tenderops had observed would count as the run's sign of life)."""
    TenderRun.objects.filter(pk__in=run_ids).update(status="running")
    RunObservation.objects.filter(run_id__in=run_ids).delete()


def silent_waiting_and_late(make_run: RunFactory) -> TenderRun:
    """A review run running for 30 minutes, another pending for 45, and a generate_docx run
    that the CLI failed and its worker then finished (a late finish, returned), all observed.
    """
    from runs.maintenance import fail_stuck_runs, observe_active_runs
    from runs.models import Actor

    minutes = timedelta(minutes=1)
    make_run(started_ago=30 * minutes, kind="review", run_type="review")
    make_run(status="pending", started_ago=45 * minutes, kind="review", run_type="review")
    late = make_run(started_ago=30 * minutes, kind="generate_docx", run_type="docx")
    fail_stuck_runs(actor=Actor.CLI, kinds=["generate_docx"])
    TenderRun.objects.filter(pk=late.pk).update(status="success")
    observe_active_runs()
    return late


def statuses(*runs: TenderRun) -> list[str]:
    by_id = dict(TenderRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("pk", "status"))
    return [by_id.get(r.pk, "<deleted>") for r in runs]


def stuck_now(**options) -> list[StuckRun]:
    """The runs the cleanup would fail now, all listed: its dry run, observation included."""
    from runs.maintenance import fail_stuck_runs

    return fail_stuck_runs(actor=Actor.CLI, dry_run=True, list_limit=None, **options).stuck_runs


def row_snapshot(run_id: str) -> tuple:
    """Every column of a run as PostgreSQL prints it, for byte-identical comparisons."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, project_id, run_type, kind, model_id, CAST(started_at AS TEXT), "
            "CAST(meta_json AS TEXT), CAST(result_json AS TEXT), CAST(progress AS TEXT), "
            "platform_job_id "
            "FROM tender_runs WHERE id = %s",
            [run_id],
        )
        return cursor.fetchone()
