"""The admin site: tenderops' operations console, its own section first."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.utils.translation import gettext_lazy


class ConsoleSite(admin.AdminSite):
    site_header = "tenderops"
    site_title = "tenderops"
    index_title = gettext_lazy("Operations console")  # not the app's name again
    site_url = None  # no "View site" link: tenderops has no site besides the admin
    enable_nav_sidebar = False  # the runs list needs the width more than other apps' links

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        # Django orders the sections by their translated names, which put the runs' section
        # (运维) after the scheduler and the users in Chinese: it comes first in every language.
        sections = super().get_app_list(request, app_label)
        return sorted(sections, key=lambda section: section["app_label"] != "runs")


class ConsoleAdminConfig(AdminConfig):
    default_site = "tenderops.admin_site.ConsoleSite"
