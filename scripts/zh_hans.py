"""Fill runs/locale/zh_Hans/LC_MESSAGES/django.po from the glossary below, then compile.

Run after `python manage.py makemessages -l zh_Hans`; a msgid missing from the glossary
is reported and makes the script fail, so no English string ships untranslated.
"""

import re
import subprocess
import sys
from pathlib import Path

PO = Path(__file__).resolve().parent.parent / "runs/locale/zh_Hans/LC_MESSAGES/django.po"

GLOSSARY = {
    "Tender run operations": "招标任务运维",
    "Tender run statistics": "招标任务统计",
    "Stuck runs": "卡住的任务",
    "Statistics": "统计",
    "Clean up stuck runs now": "立即清理卡住的任务",
    "Home": "首页",
    "Clean up stuck runs": "清理卡住的任务",
    "A run is stuck when it has been running longer than its timeout: %(minutes)s minutes": "任务运行时间超过超时阈值即视为卡住：%(minutes)s 分钟",
    "run": "任务",
    "project": "项目",
    "kind": "类型",
    "started at": "开始时间",
    "running minutes": "运行分钟数",
    "Mark these runs failed": "将这些任务标记为失败",
    "Cancel": "取消",
    "Back to the runs": "返回任务列表",
    "Mark runs failed": "标记任务失败",
    "%(counter)s run will be marked failed.": "%(counter)s 个任务将被标记为失败。",
    "%(counter)s selected run will be skipped (already finished or of unknown status).": "已选任务中有 %(counter)s 个将被跳过（已结束或状态未知）。",
    "Each one gets status “failed”, the reason below as its message and the configured error text; what they said before is kept in the audit log.": "每个任务的状态将变为“failed”，消息改为下面填写的原因，错误改为配置的错误文本；原有内容保存在审计日志中。",
    "status": "状态",
    "Showing the %(shown)s most recent.": "仅显示最近的 %(shown)s 个。",
    "Yes, mark them failed": "是，标记为失败",
    "No, take me back": "不，返回",
    "about %(count)s": "约 %(count)s",
    "more than %(count)s": "超过 %(count)s",
    "Show all": "显示全部",
    " By %(filter_title)s ": " 以 %(filter_title)s ",
    "From": "从",
    "To": "到",
    "Apply": "应用",
    "running now": "正在运行",
    "stuck now": "当前卡住",
    "OK": "正常",
    "stale": "已停滞",
    "never run": "从未运行",
    "The monitor has not run within three intervals (%(n)s min each): is <code>python manage.py qcluster</code> running?": "监控已超过三个周期（每个 %(n)s 分钟）未运行：<code>python manage.py qcluster</code> 是否在运行？",
    "Runs by status and kind": "按状态和类型统计任务",
    "total": "合计",
    "Runs per day (last 30 days)": "每日任务数（最近 30 天）",
    "Durations and timeouts (successful runs, last 30 days)": "耗时与超时（成功任务，最近 30 天）",
    "runs": "任务数",
    "configured timeout": "当前超时",
    "suggested timeout": "建议超时",
    "No successful runs in the last 30 days.": "最近 30 天没有成功的任务。",
    "Minutes. The suggested timeout is the longest successful run plus 20 %%: a timeout below it would have failed healthy runs. Set per-kind timeouts with TENDEROPS_STUCK_TIMEOUTS.": "单位：分钟。建议超时为最长成功任务耗时加 20 %%：低于该值会误杀正常任务。按类型设置超时请用 TENDEROPS_STUCK_TIMEOUTS。",
    "Failures": "失败情况",
    "(no error text)": "（无错误信息）",
    "No failures.": "没有失败。",
    "pending": "排队中",
    "running": "运行中",
    "success": "成功",
    "failed": "失败",
    "other (unknown)": "其他（未知）",
    "stuck": "卡住",
    "Yes": "是",
    "No": "否",
    "started": "开始时间",
    "Today": "今天",
    "Last 24 hours": "最近 24 小时",
    "Last 7 days": "最近 7 天",
    "Last 30 days": "最近 30 天",
    "Ignored the date %(value)s: use YYYY-MM-DD.": "已忽略日期 %(value)s：请使用 YYYY-MM-DD 格式。",
    "Reason": "原因",
    "Written to each run's message and kept in the audit log.": "写入每个任务的消息，并保存在审计日志中。",
    "A run id (tr_…) or project id (tp_…) matches exactly; other text searches project names, messages and errors of runs started in the last 30 days (or the chosen range).": "任务 ID（tr_…）或项目 ID（tp_…）精确匹配；其他文字搜索最近 30 天（或所选时间范围）内任务的项目名称、消息和错误。",
    "progress": "进度",
    "running / elapsed": "已运行 / 耗时",
    "finished at": "结束时间",
    "message": "消息",
    "error": "错误",
    "meta": "元数据",
    "result": "结果",
    "audit history": "审计记录",
    "No maintenance has changed this run.": "尚无维护操作修改过此任务。",
    "when": "时间",
    "action": "操作",
    "by": "操作者",
    "previous status": "原状态",
    "previous message": "原消息",
    "previous error": "原错误",
    "Mark selected runs failed": "将所选任务标记为失败",
    "%(marked)s marked failed, %(skipped)s skipped (already finished or unknown).": "已标记失败：%(marked)s；已跳过：%(skipped)s（已结束或状态未知）。",
    "%d run": "%d 个任务",
    "Mark runs failed?": "标记任务失败？",
    "not started yet": "尚未开始",
    "%(hours)d h %(minutes)02d min": "%(hours)d 小时 %(minutes)02d 分",
    "%(minutes)d min %(seconds)02d s": "%(minutes)d 分 %(seconds)02d 秒",
    "%(days)d d %(hours)d h": "%(days)d 天 %(hours)d 小时",
    "Send the token in the Authorization header, never in the URL.": "请在 Authorization 请求头中发送令牌，不要放在 URL 中。",
    "Invalid credentials.": "凭据无效。",
    "Authentication required.": "需要身份验证。",
    "You do not have permission to mark runs failed.": "您没有将任务标记为失败的权限。",
    "CSRF verification failed.": "CSRF 验证失败。",
    "Method not allowed.": "不允许的请求方法。",
    "The database is unavailable; try again.": "数据库暂不可用，请稍后重试。",
    "timeout_minutes must be a whole number.": "timeout_minutes 必须是整数。",
    "%(name)s must be 0 or 1.": "%(name)s 必须为 0 或 1。",
    "Tender runs": "招标任务",
    "Runs per day by status": "按状态统计的每日任务数",
    "timeout": "超时",
    "Duration of successful runs per kind (minutes)": "各类型成功任务耗时（分钟）",
    "%(name)s must be a whole number.": "%(name)s 必须是整数。",
    "%(name)s must be between 1 and %(maximum)d, got %(value)d.": "%(name)s 必须在 1 到 %(maximum)d 之间，实际为 %(value)d。",
    "A kind must be non-empty text of at most %(maximum)d characters.": "类型必须是非空文本，且不超过 %(maximum)d 个字符。",
    "Dry run: %(count)d stuck run found, nothing changed.": "试运行：发现 %(count)d 个卡住的任务，未做任何修改。",
    "Fixed %(count)d stuck run.": "已修复 %(count)d 个卡住的任务。",
    "name": "名称",
    "tender project": "招标项目",
    "tender projects": "招标项目",
    "run type": "运行类型",
    "model": "模型",
    "kind column": "类型字段",
    "platform job id": "平台作业 ID",
    "tender run": "招标任务",
    "tender runs": "招标任务",
    "Can mark tender runs failed": "可以将招标任务标记为失败",
    "user": "用户",
    "schedule": "定时任务",
    "command line": "命令行",
    "API": "API",
    "fail stuck runs": "处理卡住的任务",
    "mark runs failed": "标记任务失败",
    "prune old runs": "清理旧任务",
    "actor": "执行者",
    "parameters": "参数",
    "reason": "原因",
    "rows changed": "修改行数",
    "completed": "已完成",
    "maintenance action": "维护操作",
    "maintenance actions": "维护操作",
    "failed run record": "失败任务记录",
    "failed run records": "失败任务记录",
    "last started": "上次开始",
    "last finished": "上次结束",
    "last result": "上次结果",
    "heartbeat": "心跳",
    "heartbeats": "心跳",
    "This endpoint takes no body; pass parameters in the URL.": "此接口不接受请求体；请在 URL 中传递参数。",
    "Unknown parameter %(name)s; this endpoint accepts: %(allowed)s.": "未知参数 %(name)s；此接口接受：%(allowed)s。",
    "%(name)s is given more than once with different values.": "%(name)s 出现多次且取值不同。",
    "%(name)s must be between %(minimum)d and %(maximum)d, got %(value)d.": "%(name)s 必须在 %(minimum)d 到 %(maximum)d 之间，实际为 %(value)d。",
    "%(name)s must be a whole number, got %(value)s.": "%(name)s 必须是整数，实际为 %(value)s。",
    "%(name)s must be one of 1, true, yes, on, 0, false, no, off; got %(value)s.": "%(name)s 必须是 1、true、yes、on、0、false、no、off 之一，实际为 %(value)s。",
    "Dry run: %(failed_count)d failed and %(success_count)d successful runs would be deleted.": "试运行：将删除 %(failed_count)d 个失败任务和 %(success_count)d 个成功任务。",
    "Deleted %(failed_count)d failed and %(success_count)d successful runs.": "已删除 %(failed_count)d 个失败任务和 %(success_count)d 个成功任务。",
    "The address contains a NUL byte.": "地址中含有 NUL 字节。",
    "Too many parameters (at most %(limit)d).": "参数过多（最多 %(limit)d 个）。",
    "The request body is too large.": "请求体过大。",
    "A parameter contains a NUL byte.": "某个参数含有 NUL 字节。",
    "A parameter is longer than %(limit)d characters.": "某个参数超过 %(limit)d 个字符。",
    # The operator's console (issue 15)
    "Times in %(zone)s": "时间均为 %(zone)s",
    "paused while rows are selected": "已暂停：有选中的行",
    "paused while a form is being filled": "已暂停：正在填写表单",
    "update failed; trying again": "更新失败，稍后重试",
    "stopped: please log in again": "已停止：请重新登录",
    "Auto refresh": "自动刷新",
    "off": "关闭",
    "every 10 s": "每 10 秒",
    "every 30 s": "每 30 秒",
    "every minute": "每分钟",
    "updated %(updated)s": "更新于 %(updated)s",
    "Show these runs": "查看这些任务",
    "Export CSV": "导出 CSV",
    "Showing the first 200; the CSV export lists them all.": "仅显示前 200 条；导出的 CSV 包含全部。",
    "Mark failed": "标记为失败",
    "The filtered list, at most %(maximum)s runs": "当前筛选的列表，最多 %(maximum)s 个任务",
    "%(counter)s run with an impossible started_at (±infinity, before 2000 or in the future): shown, never failed or pruned by tenderops.": "%(counter)s 个任务的开始时间不可能成立（±无穷、早于 2000 年或在将来）：只显示，tenderops 不会将其标记为失败或清理。",
    "A run is stuck when it has been running longer than its timeout: %(minutes)s minutes.": "任务运行时间超过超时阈值即视为卡住：%(minutes)s 分钟。",
    "Timeouts per kind, in minutes: %(per_kind)s.": "各类型的超时（分钟）：%(per_kind)s。",
    "The first %(count)s of them are failed from here; the monitor or “manage.py cleanup_stuck_runs --auto-fix” fails the rest.": "此处只处理其中前 %(count)s 个；其余由监控或“manage.py cleanup_stuck_runs --auto-fix”处理。",
    "More than %(maximum)s runs would be marked failed: narrow the filter first. Stuck runs in any number are failed by the monitor, or by “manage.py cleanup_stuck_runs --auto-fix”.": "将被标记为失败的任务超过 %(maximum)s 个：请先缩小筛选范围。任意数量的卡住任务都可由监控或“manage.py cleanup_stuck_runs --auto-fix”处理。",
    "%(counter)s of them is running and not stuck: it started less than its timeout ago, and its worker may still be alive.": "其中 %(counter)s 个正在运行且未卡住：开始时间距今不到其超时阈值，其执行进程可能仍在工作。",
    "Each one gets the status “%(failed)s”, the reason below as its message and the configured error text; what they said before is kept in the audit log.": "每个任务的状态将变为“%(failed)s”，消息改为下面填写的原因，错误改为配置的错误文本；原有内容保存在审计日志中。",
    "not stuck": "未卡住",
    "project page": "项目页面",
    "Days in %(zone)s, both included.": "按 %(zone)s 的日期，含首尾两天。",
    "starting": "启动中",
    "monitor: last run %(time)s (%(ago)s ago)": "监控：上次运行 %(time)s（%(ago)s前）",
    "monitor: waiting for its first run": "监控：等待首次运行",
    "monitor: never run": "监控：从未运行",
    "Days in %(zone)s. Click a bar to see its runs.": "按 %(zone)s 的日期统计。点击柱形查看对应任务。",
    "Failure rate per day (failed / finished, last 30 days)": "每日失败率（失败 / 已结束，最近 30 天）",
    "Runs failed by tenderops per day and kind (last 30 days)": "tenderops 每日按类型标记失败的任务（最近 30 天）",
    "Runs the monitor, the cleanup or an operator failed: more of them means workers die more often.": "由监控、清理或运维人员标记为失败的任务：数量上升说明执行进程异常退出更频繁。",
    "tenderops failed no runs in the last 30 days.": "最近 30 天 tenderops 没有将任何任务标记为失败。",
    "max": "最大",
    "That confirmation page had expired; please check the runs again.": "该确认页面已过期，请重新核对任务。",
    "%(count)d more run matches the selection than the page showed; please check again.": "符合所选条件的任务比页面显示的多 %(count)d 个，请重新核对。",
    "%(minutes)s min": "%(minutes)s 分钟",
    "Runs failed by tenderops per day and kind": "tenderops 每日按类型标记失败的任务",
    "Failure rate per day": "每日失败率",
    "minutes": "分钟",
    "infinity": "无穷",
    "-infinity": "负无穷",
    "More than %(maximum)s runs match: narrow the filter (a date range, a status, a kind) to export at most %(maximum)s.": "符合条件的任务超过 %(maximum)s 个：请缩小筛选范围（日期范围、状态、类型），每次最多导出 %(maximum)s 个。",
    "(pruned)": "（已清理）",
    "project id": "项目 ID",
    "progress (%)": "进度（%）",
    "started at (%(zone)s)": "开始时间（%(zone)s）",
    "finished at (%(zone)s)": "结束时间（%(zone)s）",
    "duration (seconds)": "耗时（秒）",
    "status now": "当前状态",
    "finished (success or failed)": "已结束（成功或失败）",
    "Impossible start time": "开始时间不可能成立",
    "Search a project by name or id": "按名称或 ID 搜索项目",
    "failed by tenderops": "由 tenderops 标记失败",
    "tenderops action": "tenderops 操作",
    "action #%(id)s": "操作 #%(id)s",
    "A project id (tp_…) matches exactly; other text searches names.": "项目 ID（tp_…）精确匹配；其他文字搜索项目名称。",
    "created at": "创建时间",
    "updated at": "更新时间",
    "recent runs": "最近的任务",
    "All runs of this project": "此项目的全部任务",
    "No runs.": "没有任务。",
    "all runs of this project": "此项目的全部任务",
    "message / cause": "消息 / 原因",
    "Operations": "运维",
    "Scheduler": "定时调度",
    "Ignored: %(problem)s": "已忽略：%(problem)s",
    "run id": "任务 ID",
    "knowledge base id": "知识库 ID",
    "owner id": "所有者 ID",
    "Model name": "模型名称",
    "Add link": "添加链接",
    "Change or view list link": "修改或查看列表的链接",
    "Error:": "错误：",
}

ENTRY = re.compile(
    r'^msgid ((?:".*"\n)+)(msgid_plural (?:".*"\n)+)?((?:msgstr(?:\[\d\])? (?:".*"\n)+)+)', re.M
)
HEADER = {
    "Project-Id-Version": "tenderops",
    "Language-Team": "tenderops",
    "Last-Translator": "tenderops",
    "Language": "zh_Hans",
}


def unquote(block: str) -> str:
    return (
        "".join(re.findall(r'"(.*)"', block))
        .encode()
        .decode("unicode_escape")
        .encode("latin-1")
        .decode("utf-8")
    )


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fill(po: str) -> tuple[str, list[str]]:
    missing = []

    def replace(match: re.Match) -> str:
        msgid = unquote(match.group(1))
        if not msgid:
            return match.group(0)
        if msgid not in GLOSSARY:
            missing.append(msgid)
            return match.group(0)
        key = "msgstr[0]" if match.group(2) else "msgstr"
        return f"msgid {match.group(1)}{match.group(2) or ''}{key} {quote(GLOSSARY[msgid])}\n"

    return ENTRY.sub(replace, po), missing


def unfuzzy(po: str) -> str:
    """Once every msgstr comes from the glossary, msgmerge's fuzzy guesses (and the previous
    msgids it kept beside them) are void; msgfmt would leave a fuzzy entry out of the .mo."""

    def without_fuzzy(match: re.Match) -> str:
        kept = [flag for flag in match.group(1).split(",") if flag.strip() not in {"", "fuzzy"}]
        return f"#,{','.join(kept)}\n" if kept else ""

    po = re.sub(r"^#\| .*\n", "", po, flags=re.M)
    return re.sub(r"^#,(.*)\n", without_fuzzy, po, flags=re.M)


def main() -> None:
    text, missing = fill(PO.read_text(encoding="utf-8"))
    text = text.replace("#, fuzzy\n", "", 1)
    if not missing:
        text = unfuzzy(text)
    for field, value in HEADER.items():
        text = re.sub(rf'"{field}: [^"]*\\n"', f'"{field}: {value}\\\\n"', text, count=1)
    PO.write_text(text, encoding="utf-8")
    if missing:
        print("untranslated:", *missing, sep="\n  ")
        sys.exit(1)
    subprocess.run(
        ["msgfmt", "--check-format", "-o", str(PO.with_suffix(".mo")), str(PO)], check=True
    )


if __name__ == "__main__":
    main()
