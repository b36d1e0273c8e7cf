"""Delivering alerts: what each alert says and how each channel is sent it.

The routines record alerts (``runs.maintenance.alerts``); this package delivers them, from a
django-q2 task (or, for the stale monitor, from the health endpoint and the watchdog), so the
network is never on the monitor's path.

- ``messages``: the text of each event, in ``TENDEROPS_ALERT_LANGUAGE``, fitted to a size
- ``signing``: DingTalk's and Feishu's signatures
- ``channels``: mail, the JSON webhook, WeCom, DingTalk and Feishu: their payloads, their
  answers, their rate limits
- ``delivery``: claiming due deliveries, one attempt each, retries with backoff, records
- ``preview``: how each robot would show a message, for the admin's preview page
"""
