"""The base of every admin here: nothing is added, changed or deleted through a form."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runs belong to the tender backend and the audit log to history: nobody edits either,
    superusers included; changes go through the routines only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
