from django.contrib import admin

from runs.models import TenderRun


@admin.register(TenderRun)
class TenderRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project_id", "run_type", "kind", "status", "started_at", "finished_at"]
    list_filter = ["status"]
    show_full_result_count = False
    ordering = ["-started_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
