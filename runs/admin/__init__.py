"""The operators' admin for tender runs: a read-only list built for tens of millions of rows,
the audited "mark failed" action, the stuck-run cleanup button and the stats page.

Every change goes through runs.maintenance; this package only selects, confirms and shows.

- ``pagination``: counting without COUNT(*) over the whole table
- ``filters``: the list's filters
- ``display``: formatting of durations, times, texts and JSON
- ``actions``: "mark selected runs failed" and its confirmation page
- ``views``: the stuck-run cleanup button and the stats page (with ``charts``)
- ``runs``: the runs admin, list and detail
- ``audit``: the audit log's admin
- ``alerts``: the alert log, the test button and the robots' preview
- ``readonly``: the base of both admins: nothing is edited through a form

Importing the package registers the admins.
"""

from runs.admin import alerts, audit, runs

__all__ = ["alerts", "audit", "runs"]
