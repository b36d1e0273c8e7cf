"""Several qcluster nodes on the Redis broker (REDIS_URL), against one database: each stuck
run failed exactly once, and a node killed in the middle of a tick loses nothing."""

import os
import signal
import sys
import uuid
from datetime import timedelta

import psycopg
import pytest
import redis

from runs.maintenance import MONITOR
from runs.models import FailedRunRecord, Heartbeat, TenderRun
from tests.processes import current_database_url, start, stop, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("TENDEROPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
MIN = timedelta(minutes=1)
NODES = ("node-a", "node-b")


@pytest.fixture
def redis_broker():
    """The Redis address and a cluster name of this test's own: another suite on the same
    Redis database (another checkout, another engineer) neither takes its ticks nor loses its
    queue, and the developer's other keys there are left alone."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    client.ping()  # .ci/run starts Redis; without it this test fails loudly, never skips
    cluster = f"tenderops-test-{uuid.uuid4().hex[:12]}"
    yield REDIS_URL, cluster
    for key in client.scan_iter(match=f"django_q:{cluster}:*"):
        client.delete(key)


def start_node(name: str, tmp_path, broker: tuple[str, str]):
    url, cluster = broker
    env = {"DATABASE_URL": f"{current_database_url()}?application_name={name}"}
    env |= {"REDIS_URL": url, "TENDEROPS_CLUSTER_NAME": cluster}
    return start([sys.executable, "manage.py", "qcluster"], env, tmp_path / f"{name}.log")


def failed_ids(run_ids: list[str]) -> set[str]:
    return set(
        TenderRun.objects.filter(pk__in=run_ids, status="failed").values_list("pk", flat=True)
    )


def node_blocked_by(url: str, holder_pid: int) -> str | None:
    """The node whose monitor tick waits for a lock that backend ``holder_pid`` holds, if any.
    Only that wait counts: the nodes also wait on each other for a moment (django-q2's
    scheduler locks its schedules), and such a wait is gone before it could be acted on."""
    with psycopg.connect(url, autocommit=True) as observer:
        row = observer.execute(
            "SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = ANY(%s) AND %s = ANY(pg_blocking_pids(pid)) LIMIT 1",
            [list(NODES), holder_pid],
        ).fetchone()
    return row[0] if row else None


def test_two_nodes_on_redis_fail_once_and_survive_a_node_killed_mid_tick(
    make_run, tmp_path, redis_broker
):
    first = [make_run(started_ago=(20 + n) * MIN).pk for n in range(40)]
    nodes = {name: start_node(name, tmp_path, redis_broker) for name in NODES}
    killed = None
    try:
        wait_until(lambda: failed_ids(first) == set(first), timeout=150, what="the first sweep")

        # Hold the monitor's heartbeat row: the next tick's single statement then waits on it
        # with its stuck runs locked, in the middle of its transaction.
        second = [make_run(started_ago=(20 + n) * MIN).pk for n in range(40)]
        url = current_database_url()
        with psycopg.connect(url) as holder:
            holder.execute(
                "SELECT 1 FROM tenderops_heartbeat WHERE name = %s FOR UPDATE", [MONITOR]
            )
            blocked: list[str] = []

            def a_tick_blocks() -> bool:
                name = node_blocked_by(url, holder.info.backend_pid)
                blocked.extend([name] if name else [])
                return bool(blocked)

            wait_until(a_tick_blocks, timeout=150, what="a tick to block on the heartbeat")
            killed = blocked[0]
            os.killpg(nodes[killed].pid, signal.SIGKILL)
            nodes[killed].wait(timeout=30)
            holder.rollback()
        assert failed_ids(second) == set()  # the killed tick's work was rolled back whole
        survivor = next(name for name in NODES if name != killed)
        beat_before = Heartbeat.objects.get(name=MONITOR).last_finished_at
        wait_until(lambda: failed_ids(second) == set(second), timeout=150, what="the survivor")
        wait_until(
            lambda: Heartbeat.objects.get(name=MONITOR).last_finished_at > beat_before,
            timeout=150,
            what="the survivor's heartbeat",
        )
        assert nodes[survivor].poll() is None
    finally:
        for name, process in nodes.items():
            if name != killed:
                stop(process)
    audited = sorted(FailedRunRecord.objects.values_list("run_id", flat=True))
    assert audited == sorted(first + second)  # every stuck run failed exactly once
