from django.contrib import admin
from django.urls import include, path

from runs import api

urlpatterns = [
    path("api/apps/tender/admin/cleanup-stuck-runs", api.cleanup_stuck_runs, name="api-cleanup"),
    path("api/apps/tender/admin/health", api.health, name="api-health"),
    path("metrics", api.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # the admin's language switch
]

handler400 = api.bad_request
handler404 = api.not_found
handler500 = api.server_error
