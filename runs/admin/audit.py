"""The audit log: every maintenance action and what it overwrote, read-only for everyone."""

from django.contrib import admin

from runs.admin.readonly import ReadOnlyAdmin
from runs.models import FailedRunRecord, MaintenanceAction


class FailedRunRecordInline(admin.TabularInline):
    model = FailedRunRecord
    fields = ["run_id", "previous_status", "previous_message", "previous_error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(MaintenanceAction)
class MaintenanceActionAdmin(ReadOnlyAdmin):
    """The audit log: read-only for everyone, superusers included."""

    list_display = ["started_at", "kind", "actor", "username", "affected_count", "completed"]
    list_filter = ["kind", "actor", "completed"]
    search_fields = ["=username"]
    ordering = ["-started_at"]
    show_full_result_count = False
    readonly_fields = [
        "kind",
        "actor",
        "username",
        "started_at",
        "finished_at",
        "parameters",
        "reason",
        "affected_count",
        "completed",
    ]
    fields = readonly_fields
    inlines = [FailedRunRecordInline]
