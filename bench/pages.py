"""The figures of bench/run.py that time pages, through Django's test client logged in as a
superuser: the admin lists, the stats page, health, a `/metrics` scrape and a CSV export.
Made by bench/worker.py (inside Django) and measured there with the other figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from bench.scenario import EXPORT_ROWS, METRICS_TOKEN, RAW_GROUP_BY, TOKEN
from bench.timing import Probe, repeat, samples_of, time_n
from runs.demo_data import seeded_run_ids
from runs.maintenance import monitor_tick
from runs.maintenance.stats_snapshot import refresh_stats_snapshot
from runs.models import TenderRun

Figure = dict[str, list[float]]


class Pages:
    """Each figure ``repeat_`` times; ``execute`` runs the raw-SQL baselines."""

    def __init__(self, repeat_: int, execute: Callable[..., int]) -> None:
        self.repeat = repeat_
        self.execute = execute
        self.client = Client()
        self.client.force_login(
            User.objects.filter(username="bench").first()
            or User.objects.create_superuser("bench", "bench@example.invalid", "bench")
        )

    def probe(self, url: str, **headers) -> Probe:
        def answered(response) -> None:
            assert response.status_code in {200, 503}, (url, response.status_code)

        return Probe(lambda: self.client.get(url, **headers), check=answered)

    def list(self) -> Figure:
        some_run = seeded_run_ids("live", 1)[0]
        some_project = TenderRun.objects.get(pk=some_run).project_id
        lists = "/admin/runs/tenderrun/"
        variants = {
            "unfiltered": self.probe(lists),
            "status=running": self.probe(f"{lists}?status=running"),
            "search run id": self.probe(f"{lists}?q={some_run}"),
            "stuck=yes": self.probe(f"{lists}?stuck=yes"),
            "a project's runs": self.probe(f"{lists}?project={some_project}"),
        }
        return samples_of(repeat(self.repeat, variants))

    def stats(self) -> Figure:
        """The page (reading the snapshot) and the raw GROUP BY, interleaved; then the
        snapshot's refresh, which the cluster pays at most about once per max age."""
        refresh_stats_snapshot()
        variants = {
            "tenderops": self.probe("/admin/runs/tenderrun/stats/"),
            "baseline": lambda: self.execute(RAW_GROUP_BY),
        }
        figures = samples_of(repeat(self.repeat, variants))
        figures["refresh"] = list(time_n(refresh_stats_snapshot, 3).samples)
        return figures

    def health(self) -> Figure:
        return self._after_a_tick("/api/apps/tender/admin/health", TOKEN)

    def metrics(self) -> Figure:
        return self._after_a_tick("/metrics", METRICS_TOKEN)

    def _after_a_tick(self, url: str, token: str) -> Figure:
        monitor_tick()
        page = self.probe(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        return samples_of({"tenderops": time_n(page.work, self.repeat, check=page.check)})

    def export(self) -> Figure:
        """The CSV export of a filter: the fewest whole days, up to yesterday, that hold at
        least EXPORT_ROWS failed runs (times per 10,000 rows, so that sizes compare)."""
        first, last, rows = self._export_days()
        url = (
            f"/admin/runs/tenderrun/export/?status=failed&started_from={first:%Y-%m-%d}"
            f"&started_to={last:%Y-%m-%d}"
        )

        def download() -> int:
            response = self.client.get(url)
            assert response.status_code == 200, response.status_code
            text = b"".join(response.streaming_content).decode("utf-8-sig")
            return len(list(csv.reader(io.StringIO(text)))) - 1  # the header

        def all_rows(count: int) -> None:
            assert count == rows, count

        spread = time_n(download, self.repeat, check=all_rows)
        per_10k = [ms * EXPORT_ROWS / rows for ms in spread.samples]
        return {"tenderops": per_10k, "rows": [rows]}

    def _export_days(self):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT day, sum(n) OVER (ORDER BY day DESC) FROM (SELECT "
                "(started_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM tender_runs "
                "WHERE status = 'failed' AND started_at >= now() - interval '120 days' "
                "AND started_at < current_date GROUP BY 1) AS days ORDER BY day DESC"
            )
            days = cursor.fetchall()
        first, rows = next(((day, int(total)) for day, total in days if total >= EXPORT_ROWS))
        return first, days[0][0], rows
