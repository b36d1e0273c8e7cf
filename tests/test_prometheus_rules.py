"""docs/prometheus-rules.yml: valid for Prometheus (``promtool``, from Debian's ``prometheus``
package, which .ci/run installs), its alerts fire as docs/prometheus-rules.test.yml expects,
and every series it names is one /metrics exports."""

import re
import shutil
import subprocess

from runs.metrics import COUNTERS
from tests.conftest import REPO

DOCS = REPO / "docs"
RULES = DOCS / "prometheus-rules.yml"
EXPORTED = {
    "tenderops_runs",
    "tenderops_stuck_runs",
    "tenderops_waiting_runs",
    "tenderops_oldest_running_seconds",
    "tenderops_oldest_pending_seconds",
    "tenderops_monitor_last_success_timestamp_seconds",
    "tenderops_monitor_interval_seconds",
    "tenderops_monitor_starting",
    "tenderops_retention_last_success_timestamp_seconds",
    "tenderops_retention_scheduled",
    "tenderops_table_problems",
    "tenderops_late_finishes_total",
    *(name for name, _help, _labels in COUNTERS),
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install prometheus (Debian's package has it)"
    return subprocess.run(
        [tool, *args], cwd=DOCS, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_the_rules_fire_as_their_unit_tests_expect():
    result = promtool("test", "rules", "prometheus-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_series_the_rules_name_is_exported():
    named = set(re.findall(r"\btenderops_[a-z_]+\b", RULES.read_text()))
    assert named, "no tenderops series in the rules"
    assert named <= EXPORTED, named - EXPORTED
    for alert in ("MonitorStale", "StuckRuns", "WaitingRuns", "FailureSpike", "RetentionFailing"):
        assert f"alert: Tenderops{alert}" in RULES.read_text()
