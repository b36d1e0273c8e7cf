"""``GET /metrics``: a Prometheus collector that reads the database at scrape time.

A fresh registry per scrape holds one collector; nothing is counted in the process, so no
multiprocess mode is needed under gunicorn. A scrape reads the active runs (by index) and
tenderops' own small tables, never the finished runs. Counters live in a table retention
never prunes (``runs.maintenance.counters``): they never go down. No series is labelled by a
run or a project. Label values are the backend's kinds as they read (controls written out,
cut to LABEL_CHARS): series whose kinds read the same then add up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from runs.maintenance import active_runs, late_finish_counter_by_kind
from runs.maintenance.alerts import configured_channels
from runs.maintenance.counters import ALERTS_SENT, RUNS_FAILED, RUNS_PRUNED, read
from runs.maintenance.gauges import ActiveRuns
from runs.models import Actor, AlertAttempt
from runs.shown_text import shortened
from runs.vocabulary import ACTIVE_STATUSES, FINISHED_STATUSES

AttemptResult = AlertAttempt.Result

# Counters read as they are stored: name, help, label names.
COUNTERS = (
    (RUNS_FAILED, "Runs tenderops failed, by kind and by who failed them.", ("kind", "actor")),
    (RUNS_PRUNED, "Finished runs retention deleted, by status.", ("status",)),
    (ALERTS_SENT, "Alert delivery attempts, by channel and result.", ("channel", "result")),
)


# A 5,000-character kind would fail a scrape whose job sets label_value_length_limit.
LABEL_CHARS = 100


class TenderopsCollector:
    def collect(self) -> Iterator[Metric]:
        runs = active_runs()
        by_status = GaugeMetricFamily(
            "tenderops_runs", "Pending and running runs, by kind.", labels=["status", "kind"]
        )
        for labels, count in _series(runs.by_status_and_kind.items()):
            by_status.add_metric(labels, count)
        yield by_status
        yield _by_kind(
            "tenderops_stuck_runs", "Active runs stuck by the configured rule.", runs.stuck_by_kind
        )
        yield _by_kind(
            "tenderops_waiting_runs",
            "Pending runs waiting longer than TENDEROPS_PENDING_ALERT_MINUTES.",
            runs.waiting_by_kind,
        )
        for status in ACTIVE_STATUSES:
            yield GaugeMetricFamily(
                f"tenderops_oldest_{status}_seconds",
                f"Age of the oldest {status} run (0 when there is none).",
                value=runs.oldest_seconds[status],
            )
        last = runs.monitor_last_success
        yield GaugeMetricFamily(
            "tenderops_monitor_last_success_timestamp_seconds",
            "When the monitor last finished a tick (Unix time; 0: never).",
            value=last.timestamp() if last else 0.0,
        )
        yield GaugeMetricFamily(
            "tenderops_monitor_starting",
            "1 while a fresh install's monitor has not ticked yet (health: starting), else 0.",
            value=1.0 if runs.monitor_starting else 0.0,
        )
        yield GaugeMetricFamily(
            "tenderops_table_problems",
            "Column types of tender_runs that would make tenderops misjudge runs' ages or fail "
            "to write (health: table_unsupported; manage.py check names them), else 0.",
            value=runs.table_problems,
        )
        retention = runs.retention_last_success
        yield GaugeMetricFamily(
            "tenderops_retention_last_success_timestamp_seconds",
            "When the retention last finished a prune (Unix time; 0: never).",
            value=retention.timestamp() if retention else 0.0,
        )
        yield GaugeMetricFamily(
            "tenderops_retention_scheduled",
            "1 when the daily retention is scheduled (TENDEROPS_RETENTION_TIME), else 0.",
            value=0.0 if settings.TENDEROPS_RETENTION_TIME is None else 1.0,
        )
        yield GaugeMetricFamily(
            "tenderops_monitor_interval_seconds",
            "How often the monitor should run (TENDEROPS_MONITOR_INTERVAL_MINUTES).",
            value=settings.TENDEROPS_MONITOR_INTERVAL_MINUTES * 60,
        )
        yield from _counters(runs)


def _counters(runs: ActiveRuns) -> Iterator[Metric]:
    stored = {name: read(name) for name, _, _ in COUNTERS}
    for name, documentation, labels in COUNTERS:
        counter = CounterMetricFamily(name, documentation, labels=list(labels))
        as_labels = [
            (tuple(dict(series).get(label, "") for label in labels), value)
            for series, value in stored[name].items()
        ]
        zeros = [(values, 0) for values in _born_at_zero(name, runs)]
        for values, value in _series([*zeros, *as_labels]):
            counter.add_metric(values, value)
        yield counter
    late = CounterMetricFamily(
        "tenderops_late_finishes_total",
        "Runs tenderops failed that a worker later set to success, by kind.",
        labels=["kind"],
    )
    failed_kinds = {dict(series).get("kind", "") for series in stored[RUNS_FAILED]}
    counted = late_finish_counter_by_kind()
    zeros = [((kind,), 0) for kind in failed_kinds]
    for labels, value in _series([*zeros, *(((kind,), n) for kind, n in counted.items())]):
        late.add_metric(labels, value)
    yield late


def _born_at_zero(name: str, runs: ActiveRuns) -> list[tuple[str, ...]]:
    """Series shown at 0 before their first count. Prometheus' ``increase()`` takes a series'
    first sample as its start: a series first scraped at 50 counts nothing, and the rules on
    it missed a new kind's first fleet, the first robot refusing its key. A run is active for
    its timeout before it can be failed, so its kind is scraped at 0 first; a late finish
    needs a failed run of its kind."""
    if name == RUNS_FAILED:
        kinds = {kind for _, kind in runs.by_status_and_kind}
        return [(kind, actor) for kind in sorted(kinds) for actor in Actor.values]
    if name == RUNS_PRUNED:
        return [(status,) for status in FINISHED_STATUSES]
    if name == ALERTS_SENT:
        results = [result for result in AttemptResult.values if result != AttemptResult.SENDING]
        return [(channel, result) for channel in configured_channels() for result in results]
    return []


def _by_kind(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["kind"])
    for labels, count in _series(((kind,), count) for kind, count in counts.items()):
        gauge.add_metric(labels, count)
    return gauge


def _series(counts: Iterable[tuple[tuple[str, ...], int]]) -> list[tuple[list[str], int]]:
    """Label values as they read, each series once (summed), in order."""
    summed: Counter[tuple[str, ...]] = Counter()
    for values, count in counts:
        summed[tuple(shortened(value, LABEL_CHARS, one_line=True) for value in values)] += count
    return [(list(values), count) for values, count in sorted(summed.items())]


def exposition(accept: str) -> tuple[bytes, str]:
    """The metrics in the format the scraper asked for (``Accept``), and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TenderopsCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
