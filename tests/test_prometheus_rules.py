"""docs/prometheus-rules.yml: valid for Prometheus (``promtool``, from Debian's ``prometheus``
package, which .ci/run installs), its alerts fire as docs/prometheus-rules.test.yml expects,
and every series it names is one that a scrape of /metrics exports."""

import re
import shutil
import subprocess

from tests.conftest import REPO
from tests.test_metrics import METRICS_TOKEN, names, scrape

DOCS = REPO / "docs"
RULES = DOCS / "prometheus-rules.yml"


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


def test_every_series_the_rules_name_is_exported(db, settings):
    named = set(re.findall(r"\btenderops_[a-z_]+\b", RULES.read_text()))
    assert named, "no tenderops series in the rules"
    settings.TENDEROPS_METRICS_TOKEN = METRICS_TOKEN
    # An empty table: every family is listed even before its first sample.
    exported = names(scrape())
    assert named <= exported, named - exported
    for alert in ("MonitorStale", "StuckRuns", "WaitingRuns", "FailureSpike", "RetentionFailing"):
        assert f"alert: Tenderops{alert}" in RULES.read_text()
