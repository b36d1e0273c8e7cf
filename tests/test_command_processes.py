"""The management commands as an operator's script meets them: real processes, their exit
codes and one-line errors (bad usage 2, no database 3), and the one default database they
share with the demo."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.processes import free_port, run_in_repo


def manage(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``manage.py`` as an operator's script runs it: a real process, no terminal."""
    return run_in_repo([sys.executable, "manage.py", *arguments], env, timeout=60)


def test_real_process_exit_codes_without_terminal():
    """The exit status an operator's script sees, from a real process with no terminal."""
    refused = manage("cleanup_stuck_runs")
    assert refused.returncode == 2
    assert "No terminal" in refused.stderr
    bad = manage("cleanup_stuck_runs", "--timeout", "-5", "--dry-run")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    (line,) = bad.stderr.strip().splitlines()  # one line, no usage block before it
    assert "error: --timeout must be between 1 and" in line and "argument --timeout" not in line


def test_a_kind_that_is_not_utf8_is_a_usage_error():
    """A byte that is not UTF-8 arrives as a lone surrogate: it was a traceback, exit 1."""
    for mode in (b"--dry-run", b"--auto-fix"):
        bad = subprocess.run(
            [
                sys.executable.encode(),
                b"manage.py",
                b"cleanup_stuck_runs",
                b"--kind",
                b"rev\xff",
                mode,
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        assert bad.returncode == 2 and b"Traceback" not in bad.stderr
        (line,) = bad.stderr.strip().splitlines()
        assert b"--kind must be UTF-8 text" in line


@pytest.mark.parametrize(
    "command",
    [
        ["cleanup_stuck_runs", "--dry-run"],
        ["prune_runs", "--dry-run"],
        ["tenderops_schedules"],  # once a traceback
        ["demo_admin"],
    ],
)
def test_a_database_without_the_tables_is_one_line_and_exit_3(command, tmp_path):
    empty = tmp_path / "empty.sqlite3"
    database = {"DATABASE_URL": f"sqlite:///{empty}", "DJANGO_DEBUG": "true"}  # demo_admin's
    result = manage(*command, env={**os.environ, **database})
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "migrate" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_database_is_exit_3(tmp_path):
    unreachable = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    result = manage("cleanup_stuck_runs", "--dry-run", env=unreachable)
    assert result.returncode == 3 and "Traceback" not in result.stderr


def test_the_demo_and_the_commands_share_one_default_database():
    demo = (REPO / "scripts" / "demo").read_text()
    assert "DEMO_DATABASE_URL:-sqlite:///$PWD/var/tenderops.sqlite3" in demo
    result = run_in_repo(
        [sys.executable, "-c", "from tenderops import settings; print(settings.DATABASES)"],
        {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "DJANGO_DEBUG": "true"},
        timeout=60,
    )
    assert "var/tenderops.sqlite3" in result.stdout


@pytest.mark.parametrize(
    "how",
    [["--settings=does.not.exist"], ["--settings", "does.not.exist"], []],
)
def test_settings_that_cannot_be_loaded_are_one_line_and_exit_2(how):
    """``--settings`` was ignored (the default settings were loaded first, and the command
    ran on them); a module that does not exist in DJANGO_SETTINGS_MODULE was a traceback."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "does.not.exist" if not how else ""}
    result = manage(
        "cleanup_stuck_runs", "--dry-run", *how, env={n: v for n, v in env.items() if v}
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Configuration error: settings 'does.not.exist' cannot be loaded")


def test_an_empty_kind_is_one_line_naming_the_flag():
    result = manage("cleanup_stuck_runs", "--kind", "", "--dry-run")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "error: --kind: A kind must be non-empty" in line and "argument" not in line


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    """``tenderops_schedules | head -1``: a traceback (BrokenPipeError) and exit 1."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    assert manage("migrate", "-v0", env=env).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a line
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", "tenderops_schedules"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_output_that_cannot_encode_a_kind_gets_it_escaped():
    """PYTHONIOENCODING=ascii (or a console in another encoding): a kind in Chinese was a
    UnicodeEncodeError traceback, exit 1."""
    from tests.processes import current_database_url

    env = {**os.environ, "DATABASE_URL": current_database_url(), "PYTHONIOENCODING": "ascii"}
    result = manage("cleanup_stuck_runs", "--dry-run", "--kind", "中文", env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "\\u4e2d\\u6587" in result.stdout
    # --json stays JSON: an output's own escapes (\xe9, \U0001f600) are none.
    result = manage("cleanup_stuck_runs", "--dry-run", "--json", "--kind", "café😀", env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["kinds_not_running"] == ["café😀"]


def test_a_cluster_whose_broker_does_not_answer_says_so_in_one_line():
    """It was three tracebacks, from the sentinel process and the command."""
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = manage("qcluster", env=env)
    assert result.returncode == 3, result.stderr
    assert "The cluster's broker does not answer" in result.stderr
    assert "Traceback" not in result.stderr
