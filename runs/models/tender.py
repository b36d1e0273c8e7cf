"""The tender backend's tables, adopted and never reshaped, and the named sets of runs.

``tender_projects`` and ``tender_runs`` belong to the tender backend. Migration 0001 creates
them only where they do not exist yet (tests, the demo); on the live database it leaves them
exactly as they are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, Greatest, Now, NullIf
from django.utils.translation import gettext_lazy as _

from runs.limits import EARLIEST_START, START_SKEW
from runs.shown_text import shortened, visible
from runs.vocabulary import ACTIVE_STATUSES, WHITESPACE, RunStatus, run_kind

# A project's name in titles, breadcrumbs and the project search.
NAME_SHOWN_CHARS = 120


class TenderProject(models.Model):
    id = models.TextField(primary_key=True)
    kb_id = models.TextField()
    name = models.TextField(_("name"))
    description = models.TextField(null=True, blank=True)
    owner_id = models.CharField(max_length=36, null=True, blank=True)
    status = models.TextField(db_default="draft")
    meta_json = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "tender_projects"
        verbose_name = _("tender project")
        verbose_name_plural = _("tender projects")
        indexes = [
            models.Index(fields=["kb_id"], name="idx_tender_projects_kb"),
            models.Index(fields=["owner_id"], name="idx_tender_projects_owner"),
        ]

    def __str__(self) -> str:
        # Wherever Django shows a project (title, breadcrumbs, the project filter's search),
        # its name is read, not obeyed (runs.shown_text), and a pasted page of text is cut.
        return shortened(self.name, NAME_SHOWN_CHARS, one_line=True) or self.id


class StripWhitespace(models.Func):
    """``btrim(text, characters)``; SQLite calls it ``trim``."""

    function = "btrim"

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="trim", **extra_context)


class StuckJudge(Protocol):
    """What ``TenderRunQuerySet.stuck`` asks of a policy (runs.maintenance.policy)."""

    def stuck_condition(self) -> Q: ...

    def reason(self) -> models.Expression: ...


class Fingerprint(models.Func):
    """What a worker's signs of life change: ``status``, ``progress`` and ``message``, hashed
    into text. The observation statement and the failing guard compare exactly this.

    On PostgreSQL, 64-bit hashes of each column, each seeding the next: no text is built, so
    ``progress`` is never formatted (formatting and joining cost 3.4 ms of a 5.2 ms scan of
    2,080 active runs at 10 M; the chained hashes 0.4 ms). Elsewhere (the SQLite demo), the
    MD5 of the three joined. A changed fingerprint only needs to differ: a collision (2^-64)
    would hide one change, and a ``progress`` of NaN reads as a missing one. A change of how
    the fingerprint is made needs a migration that carries the stored ones over (0011), or
    every active run looks changed once."""

    output_field = models.CharField(max_length=32)

    def __init__(self) -> None:
        super().__init__(F("status"), F("progress"), F("message"))

    def as_sql(self, compiler, connection, **extra_context):
        text = models.TextField()
        absent = Value("\x01", output_field=text)  # tells NULL from an empty message
        separator = Value("\x02", output_field=text)
        status, progress, message = self.get_source_expressions()
        parts = [
            Coalesce(status, absent, output_field=text),
            Coalesce(Cast(progress, text), absent, output_field=text),
            Coalesce(message, absent, output_field=text),
        ]
        joined = Concat(parts[0], separator, parts[1], separator, parts[2], output_field=text)
        sql, params = compiler.compile(joined)
        return f"MD5({sql})", params

    def as_postgresql(self, compiler, connection, **extra_context):
        status, progress, message = (compiler.compile(e) for e in self.get_source_expressions())
        sql = (
            f"CAST(hashtextextended(COALESCE({message[0]}, chr(1)), "
            f"hashfloat8extended(COALESCE({progress[0]}, 'NaN'::float8), "
            f"hashtextextended(COALESCE({status[0]}, chr(1)), 0))) AS text)"
        )
        return sql, (*message[1], *progress[1], *status[1])


def fingerprint() -> Fingerprint:
    """The fingerprint of a run's signs of life (``Fingerprint``)."""
    return Fingerprint()


class Unestimated(models.Func):
    """A value the planner cannot see: a one-row subquery, compared at run time (an index
    condition all the same). For EARLIEST_START, which lies below every real start: given it
    as a constant, PostgreSQL's planner (15) reads the oldest end of the ``started_at`` index
    to refine its estimate, through every dead entry a prune left there until the table is
    next vacuumed (10 M runs after a 1 M-row prune: 20 ms of planning and 3,165 buffers for
    each query that names it, against 0.2 ms)."""

    template = "(SELECT %(expressions)s)"
    arity = 1


def earliest_start() -> Unestimated:
    return Unestimated(Value(EARLIEST_START, output_field=models.DateTimeField()))


def plausible_finish() -> Q:
    """A run whose ``finished_at`` can be true, as ``plausible`` says of a start, and not
    before its own start: a duration read from any other is nonsense (negative, or millions
    of minutes)."""
    return Q(finished_at__gte=EARLIEST_START, finished_at__lt=Now() + START_SKEW) & Q(
        finished_at__gte=F("started_at")
    )


class TenderRunQuerySet(models.QuerySet):
    """The named sets of runs that the routines, the admin and the API speak of."""

    def with_run_kind(self) -> TenderRunQuerySet:
        """Annotate ``run_kind``: the kind to show and to match timeouts on; an empty or blank
        ``kind`` counts as missing (``runs.vocabulary.run_kind`` is the same rule in Python)."""
        text = models.TextField()
        trimmed = StripWhitespace("kind", Value(WHITESPACE, output_field=text), output_field=text)
        missing = Value("", output_field=text)
        # Blank too where run_type is NULL (a table altered to allow it; the health check
        # names it): a kind is text on every page, label and key.
        return self.annotate(run_kind=Coalesce(NullIf(trimmed, missing), "run_type", missing))

    def plausible(self) -> TenderRunQuerySet:
        """Runs whose ``started_at`` can be true: never before EARLIEST_START, never beyond
        the database's clock plus START_SKEW (so never +/-infinity). Only comparisons: no
        arithmetic on a stored timestamp, which raises on an infinite one."""
        return self.filter(started_at__gte=earliest_start(), started_at__lt=Now() + START_SKEW)

    def plausible_finish(self) -> TenderRunQuerySet:
        return self.filter(plausible_finish())

    def impossible_start(self) -> TenderRunQuerySet:
        # A constant here: the planner must see that few runs started before it (as an
        # ``Unestimated`` value it guessed a third of the table and scanned it all, 1.5 s).
        return self.filter(Q(started_at__lt=EARLIEST_START) | Q(started_at__gte=Now() + START_SKEW))

    def beyond_the_monitor(self) -> TenderRunQuerySet:
        """Active runs with an impossible start: the monitor never fails them, an operator
        must (the notices count them; finished ones need nobody)."""
        return self.active().impossible_start()

    def running(self) -> TenderRunQuerySet:
        return self.filter(status=RunStatus.RUNNING)

    def active(self) -> TenderRunQuerySet:
        """Runs still in the workers' hands: pending or running."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def of_unknown_status(self) -> TenderRunQuerySet:
        return self.exclude(status__in=RunStatus.values)

    def with_last_sign_of_life(self) -> TenderRunQuerySet:
        """Annotate ``last_change_at`` (the last change tenderops observed, if any) and
        ``last_sign_of_life``: the later of ``started_at`` and that change."""
        return self.annotate(last_change_at=F("observation__last_change_at")).annotate(
            last_sign_of_life=Greatest("started_at", Coalesce("last_change_at", "started_at"))
        )

    def with_liveness(self) -> TenderRunQuerySet:
        """Annotate what tenderops observed of each run (runs.maintenance.liveness): the
        fingerprint then and now, when it first saw the run, how many changes it saw, since
        when it is running, and the last sign of life (``with_last_sign_of_life``). One
        outer join: four lookups per run cost the 200-run failing statement 1.6 ms of its
        candidates' 2.5 (EXPLAIN ANALYZE at 1 M)."""
        return self.with_last_sign_of_life().annotate(
            observed_fingerprint=F("observation__fingerprint"),
            first_seen_at=F("observation__first_seen_at"),
            observed_changes=F("observation__changes"),
            fingerprint_now=fingerprint(),
            # Since when the run counts as running: its start if never observed, else when
            # first seen running. None if it has not been seen running yet, whatever its
            # status now says (a worker has only just picked it up), except where its
            # fingerprint is as observed: an observation the code before running_since made
            # of a running run (its start then counts, as it did).
            running_from=Case(
                When(first_seen_at__isnull=True, then=F("started_at")),
                When(
                    observation__running_since__isnull=False, then=F("observation__running_since")
                ),
                When(observed_fingerprint=F("fingerprint_now"), then=F("started_at")),
                default=None,
            ),
        )

    def stuck(self, judge: StuckJudge) -> TenderRunQuerySet:
        """The single definition of "stuck": what ``judge`` (the stuck policy) says, on runs
        with a plausible start, annotated with ``fail_reason``."""
        return (
            self.with_run_kind()
            .with_liveness()
            .plausible()
            .filter(judge.stuck_condition())
            .annotate(fail_reason=judge.reason())
        )

    def waiting(self, minutes: int) -> TenderRunQuerySet:
        """Pending runs whose last sign of life is older than ``minutes``. It starts with what
        that implies, ``started_at`` as old (the last sign of life is never earlier): a range
        on the index of pending runs, so that runs queued lately are not even read."""
        threshold = Now() - timedelta(minutes=minutes)
        return (
            self.with_run_kind()
            .with_liveness()
            .plausible()
            .filter(status=RunStatus.PENDING, started_at__lt=threshold)
            .filter(last_sign_of_life__lt=threshold)
        )

    def expired(self, status: str, cutoff: datetime) -> TenderRunQuerySet:
        """Finished runs of ``status`` started before ``cutoff``: what retention deletes.
        Bounded below, so a run started at '-infinity' is never deleted by it."""
        return self.filter(status=status, started_at__gte=earliest_start(), started_at__lt=cutoff)


class TenderRun(models.Model):
    id = models.TextField(primary_key=True)
    project = models.ForeignKey(
        TenderProject,
        on_delete=models.CASCADE,
        db_column="project_id",
        db_index=False,  # idx_tender_runs_project is the live index on it
        related_name="runs",
        verbose_name=_("project"),
    )
    run_type = models.TextField(_("run type"))
    status = models.TextField(_("status"), db_default=RunStatus.PENDING)
    model_id = models.TextField(_("model"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), null=True, blank=True)
    meta_json = models.JSONField(_("meta"), default=dict)
    kind = models.TextField(_("kind column"), null=True, blank=True)
    progress = models.FloatField(_("progress"), null=True, blank=True)
    message = models.TextField(_("message"), null=True, blank=True)
    result_json = models.JSONField(_("result"), null=True, blank=True)
    platform_job_id = models.TextField(_("platform job id"), null=True, blank=True)

    objects = TenderRunQuerySet.as_manager()

    class Meta:
        db_table = "tender_runs"
        verbose_name = _("tender run")
        verbose_name_plural = _("tender runs")
        permissions = [("mark_failed_tenderrun", _("Can mark tender runs failed"))]
        indexes = [
            # The live table also has idx_tender_runs_platform_job_id, created with the table
            # (runs/tender_live.sql); its name is too long for Django's index checks (E034).
            models.Index(fields=["project"], name="idx_tender_runs_project"),
            # tenderops' own, created CONCURRENTLY by migration 0003 (chosen by EXPLAIN):
            # stuck detection scans only the few running rows.
            models.Index(
                fields=["started_at"],
                name="tenderops_running_started",
                condition=Q(status=RunStatus.RUNNING),
            ),
            # the observation reads every active run: pending ones through this one (0004).
            models.Index(
                fields=["started_at"],
                name="tenderops_pending_started",
                condition=Q(status=RunStatus.PENDING),
            ),
            # retention batches and status filters, in started_at order.
            models.Index(fields=["status", "started_at"], name="tenderops_status_started"),
            # the admin list's default ordering (-started_at, -id) and date ranges.
            models.Index(fields=["started_at", "id"], name="tenderops_started_id"),
        ]

    def __str__(self) -> str:
        # Wherever Django names a run (title, breadcrumbs), its id is read, not obeyed.
        return visible(self.id, one_line=True)

    @property
    def display_kind(self) -> str:
        return run_kind(self.kind, self.run_type)
