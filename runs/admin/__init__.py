"""The operators' admin for tender runs: a read-only list built for tens of millions of rows,
the audited "mark failed" action, the stuck-run cleanup button and the stats page.

Every change goes through runs.maintenance; this package only selects, confirms and shows.

- ``site``: the site's name, its time zone named on every page, the scheduler's heading
- ``pagination``: counting without COUNT(*) over the whole table
- ``filters``: the list's filters
- ``links``: ``runs_list_url``, from a number to the list of the runs it counts
- ``display``: formatting of durations, times, texts and JSON
- ``actions``: "mark selected runs failed" and its confirmation page
- ``views``: the stuck-run cleanup button and the stats page (with ``charts``)
- ``export``: CSV of the filtered list and of an audited action's runs
- ``runs``: the runs admin, list and detail
- ``projects``: the projects' admin (a page per project, the project search)
- ``audit``: the audit log's admin
- ``alerts``: the alert log, the test button and the robots' preview
- ``readonly``: the base of the admins: nothing is edited through a form

Importing the package registers the admins.
"""

from runs.admin import alerts, audit, projects, runs, site

__all__ = ["alerts", "audit", "projects", "runs", "site"]
