"""Realistic demo and benchmark data for ``tender_runs``.

On PostgreSQL the rows are made by set-based SQL (``generate_series``), a million per
statement, so ten million runs take minutes. Elsewhere (the SQLite demo) a Python loop makes
the same mix. Both draw on the vocabulary below.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction

from runs.maintenance import db_now
from runs.models import TenderProject, TenderRun
from runs.vocabulary import RunStatus

# (run_type, kind, typical minutes of a successful run, message while it runs)
KINDS = [
    ("project_info", "extract_project_info", 2.0, "提取中..."),
    ("risks", "extract_risks", 4.0, "风险提取中..."),
    ("directory", "generate_directory", 3.0, "目录生成中..."),
    ("review", "review", 8.0, "审查中..."),
    ("docx", "generate_docx", 12.0, "生成中..."),
]
ERRORS = [
    "LLM 调用超时（read timeout=600s）",
    "模型返回内容不是合法 JSON",
    "文档解析失败：不支持的文件格式",
    "Worker 进程被终止 (OOM killed)",
    "知识库检索失败：连接被拒绝",
    "任务超时未完成",
]
MODELS = ["qwen-max", "deepseek-v3", "glm-4-plus"]
PROJECT_TOPICS = [
    "市政道路改造工程",
    "智慧园区建设项目",
    "医院信息化升级",
    "学校扩建工程",
    "污水处理厂提标改造",
]
CHUNK = 1_000_000
# Older than any sane per-kind timeout, so a stuck run is stuck whatever the settings say.
STUCK_MIN_AGE = timedelta(hours=2)


@dataclass(frozen=True)
class SeedPlan:
    runs: int
    stuck: int
    live_running: int
    pending: int
    days: int
    projects: int
    seed: int

    @property
    def historical(self) -> int:
        return self.runs - self.stuck - self.live_running - self.pending


def seed_runs(plan: SeedPlan) -> dict[str, int]:
    if connection.vendor == "postgresql":
        _seed_postgresql(plan)
    else:
        _seed_python(plan)
    return {
        "projects": plan.projects,
        "historical": plan.historical,
        "stuck": plan.stuck,
        "live_running": plan.live_running,
        "queued": plan.pending,
    }


def _vocabulary() -> dict[str, list]:
    return {
        "run_types": [k[0] for k in KINDS],
        "kinds": [k[1] for k in KINDS],
        "minutes": [k[2] for k in KINDS],
        "running_messages": [k[3] for k in KINDS],
        "errors": ERRORS,
        "models": MODELS,
        "topics": PROJECT_TOPICS,
        "failed_status": RunStatus.FAILED,
        "success_status": RunStatus.SUCCESS,
        "running_status": RunStatus.RUNNING,
    }


_PROJECTS_SQL = """
INSERT INTO tender_projects (id, kb_id, name, owner_id, status, created_at, updated_at)
SELECT 'tp_' || md5(%(salt)s || 'p' || g), 'kb_' || (g %% 17),
       (%(topics)s::text[])[1 + g %% 5] || ' #' || g, 'u_' || (g %% 40), 'active',
       now() - make_interval(days => %(days)s), now()
FROM generate_series(1, %(projects)s) AS g
"""

_HISTORY_SQL = """
INSERT INTO tender_runs (id, project_id, run_type, kind, status, model_id, started_at,
                         finished_at, error, meta_json, progress, message, result_json)
SELECT 'tr_' || md5(%(salt)s || 'r' || g),
       'tp_' || md5(%(salt)s || 'p' || (1 + (g * 7919) %% %(projects)s)),
       (%(run_types)s::text[])[k],
       CASE WHEN g %% 3 = 0 THEN NULL ELSE (%(kinds)s::text[])[k] END,
       CASE WHEN failed THEN %(failed_status)s ELSE %(success_status)s END,
       (%(models)s::text[])[1 + g %% 3],
       started,
       started + make_interval(secs => duration),
       CASE WHEN failed THEN (%(errors)s::text[])[1 + (g / 7) %% 6] END,
       jsonb_build_object('file', '招标文件_' || g || '.pdf', 'pages', 10 + g %% 290),
       CASE WHEN failed THEN round((g %% 90) / 100.0, 2) ELSE 1.0 END,
       CASE WHEN failed THEN '任务失败' ELSE '完成' END,
       CASE WHEN failed THEN NULL ELSE jsonb_build_object('items', g %% 40) END
FROM (
    SELECT g, 1 + g %% 5 AS k, random() < 0.1 AS failed,
           -- Runs are inserted as they happen, oldest first, so that the heap is in time
           -- order like a live table's (recent windows are the table's last pages).
           now() - interval '1 hour' - make_interval(days => %(days)s)
               * ((%(total)s - g)::float8 / %(total)s) - random() * interval '5 minutes' AS started,
           (%(minutes)s::float8[])[1 + g %% 5] * 60 * (0.3 + 2.5 * random() ^ 3) AS duration
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
) AS history
"""

_LIVE_SQL = """
INSERT INTO tender_runs (id, project_id, run_type, kind, status, model_id, started_at,
                         meta_json, progress, message)
SELECT 'tr_' || md5(%(salt)s || %(label)s || g),
       'tp_' || md5(%(salt)s || 'p' || (1 + (g * 104729) %% %(projects)s)),
       (%(run_types)s::text[])[1 + g %% 5],
       CASE WHEN g %% 3 = 0 THEN NULL ELSE (%(kinds)s::text[])[1 + g %% 5] END,
       %(status)s, (%(models)s::text[])[1 + g %% 3],
       now() - %(min_age)s - random() * %(spread)s,
       jsonb_build_object('file', '招标文件_' || g || '.pdf'),
       CASE WHEN %(status)s = %(running_status)s THEN round((0.1 + random() * 0.8)::numeric, 2) END,
       CASE WHEN %(status)s = %(running_status)s THEN (%(running_messages)s::text[])[1 + g %% 5]
            ELSE '排队中' END
FROM generate_series(1, %(count)s) AS g
"""


def _live_groups(plan: SeedPlan) -> list[dict]:
    return [
        {
            "label": "stuck",
            "status": RunStatus.RUNNING,
            "count": plan.stuck,
            "min_age": STUCK_MIN_AGE,
            "spread": timedelta(days=3),
        },
        {
            "label": "live",
            "status": RunStatus.RUNNING,
            "count": plan.live_running,
            "min_age": timedelta(0),
            "spread": timedelta(minutes=4),
        },
        {
            "label": RunStatus.PENDING.value,
            "status": RunStatus.PENDING,
            "count": plan.pending,
            "min_age": timedelta(0),
            "spread": timedelta(minutes=2),
        },
    ]


def _seed_postgresql(plan: SeedPlan) -> None:
    params = {**_vocabulary(), "salt": str(plan.seed), "days": plan.days, "projects": plan.projects}
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [(plan.seed % 1000) / 1000])
        cursor.execute("SELECT NOT EXISTS (SELECT 1 FROM tender_runs)")
        empty = cursor.fetchone()[0]
        if empty:
            # An empty table loads far faster without its indexes (random md5 ids make every
            # index insert a random write); all in one transaction, so a crash keeps them.
            with transaction.atomic():
                indexes = _drop_run_indexes(cursor)
                _insert_runs(cursor, plan, params)
                _restore_run_indexes(cursor, indexes)
        else:
            _insert_runs(cursor, plan, params)


def _insert_runs(cursor, plan: SeedPlan, params: dict) -> None:
    cursor.execute(_PROJECTS_SQL, params)
    for first in range(1, plan.historical + 1, CHUNK):
        last = min(first + CHUNK - 1, plan.historical)
        with transaction.atomic():
            cursor.execute(
                _HISTORY_SQL, {**params, "first": first, "last": last, "total": plan.historical}
            )
    for group in _live_groups(plan):
        cursor.execute(_LIVE_SQL, {**params, **group})


def _drop_run_indexes(cursor) -> list[str]:
    """Drop tender_runs' indexes and primary key; return the statements that restore them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'tender_runs'::regclass AND contype = 'p'"
    )
    restore = [
        f'ALTER TABLE tender_runs ADD CONSTRAINT "{name}" {definition}'
        for name, definition in cursor.fetchall()
    ]
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = 'tender_runs'::regclass AND NOT x.indisprimary"
    )
    indexes = cursor.fetchall()
    restore += [definition for _name, definition in indexes]
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    for statement in restore[: len(restore) - len(indexes)]:
        constraint = statement.split('"')[1]
        cursor.execute(f'ALTER TABLE tender_runs DROP CONSTRAINT "{constraint}"')
    return restore


def _restore_run_indexes(cursor, statements: list[str]) -> None:
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for statement in statements:
        cursor.execute(statement)


def _hex_id(prefix: str, *parts: object) -> str:
    digest = hashlib.md5("".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()
    return prefix + digest


def seeded_run_ids(label: str, count: int, seed: int = 1) -> list[str]:
    """The ids that seeding gives the runs of a group: stuck, live, or pending."""
    return [_hex_id("tr_", str(seed), label, g) for g in range(1, count + 1)]


def _seed_python(plan: SeedPlan) -> None:
    rng = random.Random(plan.seed)
    now = db_now()
    salt = str(plan.seed)
    projects = [
        TenderProject(
            id=_hex_id("tp_", salt, "p", g),
            kb_id=f"kb_{g % 17}",
            name=f"{PROJECT_TOPICS[g % 5]} #{g}",
            owner_id=f"u_{g % 40}",
            status="active",
        )
        for g in range(1, plan.projects + 1)
    ]
    runs = [_python_history_run(rng, now, plan, g, projects) for g in range(1, plan.historical + 1)]
    for group in _live_groups(plan):
        for g in range(1, group["count"] + 1):
            run_type, kind, _minutes, running_message = KINDS[g % 5]
            runs.append(
                TenderRun(
                    id=_hex_id("tr_", salt, group["label"], g),
                    project=projects[g % plan.projects],
                    run_type=run_type,
                    kind=None if g % 3 == 0 else kind,
                    status=group["status"],
                    model_id=MODELS[g % 3],
                    started_at=now - group["min_age"] - rng.random() * group["spread"],
                    meta_json={"file": f"招标文件_{g}.pdf"},
                    progress=round(0.1 + rng.random() * 0.8, 2)
                    if group["status"] == RunStatus.RUNNING
                    else None,
                    message=running_message if group["status"] == RunStatus.RUNNING else "排队中",
                )
            )
    with transaction.atomic():
        TenderProject.objects.bulk_create(projects, batch_size=500)
        TenderRun.objects.bulk_create(runs, batch_size=500)


def _python_history_run(
    rng: random.Random, now, plan: SeedPlan, g: int, projects: list[TenderProject]
) -> TenderRun:
    run_type, kind, minutes, _message = KINDS[g % 5]
    failed = rng.random() < 0.1
    age = (plan.historical - g) / plan.historical * timedelta(days=plan.days)
    started = now - timedelta(hours=1) - age - rng.random() * timedelta(minutes=5)
    duration = timedelta(minutes=minutes * (0.3 + 2.5 * rng.random() ** 3))
    return TenderRun(
        id=_hex_id("tr_", str(plan.seed), "r", g),
        project=projects[(g * 7919) % plan.projects],
        run_type=run_type,
        kind=None if g % 3 == 0 else kind,
        status=RunStatus.FAILED if failed else RunStatus.SUCCESS,
        model_id=MODELS[g % 3],
        started_at=started,
        finished_at=started + duration,
        error=ERRORS[(g // 7) % 6] if failed else None,
        meta_json={"file": f"招标文件_{g}.pdf", "pages": 10 + g % 290},
        progress=round((g % 90) / 100, 2) if failed else 1.0,
        message="任务失败" if failed else "完成",
        result_json=None if failed else {"items": g % 40},
    )
