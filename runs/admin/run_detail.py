"""The runs admin's read-only detail page: each of the backend's columns as it reads (never
obeyed: runs.shown_text), the run's JSON, what tenderops observed and its audit history."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import TextField
from django.db.models.functions import Cast, Left, Length
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from runs.admin.display import pretty_stored_json, short_time, truncate, why_failed
from runs.limits import SHOWN_TEXT_CHARS
from runs.models import Actor, FailedRunRecord, MaintenanceAction, TenderRun
from runs.shown_text import visible
from runs.vocabulary import RunStatus


def one_line(text: str | None) -> str:
    """A short text column of the backend's on one line, "–" for none."""
    return visible(text or "", one_line=True) or "–"


class RunDetailMixin:
    """For the runs' ModelAdmin: the fields of its detail page."""

    @admin.display(description=gettext_lazy("run id"))
    def run_id_full(self, run: TenderRun) -> str:
        return visible(run.pk, one_line=True)

    @admin.display(description=gettext_lazy("run type"))
    def run_type_full(self, run: TenderRun) -> str:
        return one_line(run.run_type)

    @admin.display(description=gettext_lazy("model"))
    def model_full(self, run: TenderRun) -> str:
        return one_line(run.model_id)

    @admin.display(description=gettext_lazy("platform job id"))
    def platform_job_full(self, run: TenderRun) -> str:
        return one_line(run.platform_job_id)

    @admin.display(description=gettext_lazy("kind"))
    def kind_full(self, run: TenderRun) -> str:
        return visible(run.kind) if run.kind else "–"

    @admin.display(description=gettext_lazy("message"))
    def message_full(self, run: TenderRun) -> str:
        return free_text(run.message)

    @admin.display(description=gettext_lazy("error"))
    def error_full(self, run: TenderRun) -> str:
        return free_text(run.error)

    @admin.display(description=gettext_lazy("meta"))
    def meta_pretty(self, run: TenderRun) -> str:
        return stored_json(run, "meta_json")

    @admin.display(description=gettext_lazy("result"))
    def result_pretty(self, run: TenderRun) -> str:
        return stored_json(run, "result_json")

    @admin.display(description=gettext_lazy("audit history"))
    def audit_history(self, run: TenderRun) -> str:
        records = (
            FailedRunRecord.objects.filter(run_id=run.pk)
            .select_related("action")
            .with_text_starts()
            .order_by("-action__started_at")[:50]
        )
        if not records:
            return _("No maintenance has changed this run.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td class="run-free-text">{}</td><td class="run-free-text">{}</td></tr>',
            (
                (
                    short_time(r.action.started_at),
                    format_html(
                        '<a href="{}">{}</a>',
                        reverse("admin:runs_maintenanceaction_change", args=[r.action_id]),
                        r.action.get_kind_display(),
                    ),
                    who_did(r.action),
                    why_failed(r.reason, r.silent_minutes),
                    RunStatus.label_of(r.previous_status),
                    truncate(r.message_start, 200) or "–",
                    truncate(r.error_start, 200) or "–",
                )
                for r in records
            ),
        )
        return format_html(
            '<div class="table-scroll"><table class="run-audit"><thead><tr><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table></div>",
            _("when"),
            _("action"),
            _("by"),
            _("why"),
            _("previous status"),
            _("previous message"),
            _("previous error"),
            rows,
        )


def who_did(action: MaintenanceAction) -> str:
    """The admin's user; a command's user beside where it came from ("root (command line)");
    else where it came from (the monitor)."""
    where = action.get_actor_display()
    if not action.username or action.actor == Actor.USER:
        return action.username or where
    return f"{action.username} ({where})"


def free_text(text: str | None) -> str:
    """A text column of the backend's as written, its first SHOWN_TEXT_CHARS characters: a
    45 MB message made a 157 MB page (found by the odd-rows attacker)."""
    if not (text or "").strip():
        return "–"
    return format_html(
        '<pre class="run-text">{}</pre>{}', visible(text[:SHOWN_TEXT_CHARS]), cut_note(len(text))
    )


def stored_json(run: TenderRun, field: str) -> str:
    """``run``'s JSON column as the database holds it, as text (never decoded as a field),
    indented when whole; past SHOWN_TEXT_CHARS its beginning only, as stored, cut by the
    database (no point reading megabytes to show a page of them)."""
    as_text = Cast(field, TextField())
    row = (
        TenderRun.objects.filter(pk=run.pk)
        .values_list(Left(as_text, SHOWN_TEXT_CHARS), Length(as_text))
        .first()
    )
    if row is None or row[0] is None:
        return "–"
    text, length = row
    if length <= SHOWN_TEXT_CHARS:
        return pretty_stored_json(text)
    return format_html('<pre class="run-json">{}</pre>{}', visible(text), cut_note(length))


def cut_note(length: int) -> str:
    if length <= SHOWN_TEXT_CHARS:
        return ""
    return format_html(
        '<p class="help run-cut">{}</p>',
        _("The first %(shown)s of its %(length)s characters are shown.")
        % {"shown": f"{SHOWN_TEXT_CHARS:,}", "length": f"{length:,}"},
    )
