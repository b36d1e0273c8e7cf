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
    "monitor": "监控",
    "last run %(when)s ago": "上次运行于 %(when)s 前",
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
    "kind column": "kind 字段",
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
    "%(counter)s run with an impossible started_at (±infinity, before 2000 or in the future): shown, never failed or pruned by tenderops.": "%(counter)s 个任务的 started_at 不可能成立（±infinity、早于 2000 年或在未来）：只显示，tenderops 从不将其标记失败或清理。",
    "The first %(count)s of them are failed from here; the monitor or “manage.py cleanup_stuck_runs --auto-fix” fails the rest.": "此处只处理其中前 %(count)s 个；其余由监控或“manage.py cleanup_stuck_runs --auto-fix”处理。",
    "More than %(maximum)s runs would be marked failed: narrow the filter first. Stuck runs in any number are failed by the monitor, or by “manage.py cleanup_stuck_runs --auto-fix”.": "将被标记失败的任务超过 %(maximum)s 个：请先缩小筛选范围。任意数量的卡住任务可由监控或“manage.py cleanup_stuck_runs --auto-fix”处理。",
    "That confirmation page had expired; please check the runs again.": "该确认页面已过期，请重新检查任务。",
    "%(count)d more run matches the selection than the page showed; please check again.": "符合条件的任务比页面显示的多 %(count)d 个，请重新检查。",
    "infinity": "无穷大",
    "-infinity": "负无穷大",
    "Impossible start time": "不可能的开始时间",
    "Ignored: %(problem)s": "已忽略：%(problem)s",
    "Send a test alert": "发送测试告警",
    "Preview messages": "预览消息",
    "What tenderops sends to each channel, shown as the chat programs show it. Nothing is sent from this page.": "tenderops 发往各渠道的内容，按各聊天软件的显示方式呈现。此页面不会发送任何消息。",
    "not configured": "未配置",
    "A test message goes to every configured channel now; each channel's answer is shown here and kept in the alert log.": "现在向每个已配置的渠道发送一条测试消息；各渠道的应答显示在此处，并保存在告警日志中。",
    "channel": "渠道",
    "destination": "目标地址",
    "Send the test message": "发送测试消息",
    "No alert channel is configured: set TENDEROPS_ALERT_EMAILS, TENDEROPS_ALERT_WEBHOOK_URL, TENDEROPS_WECOM_WEBHOOK_URL, TENDEROPS_DINGTALK_WEBHOOK_URL or TENDEROPS_FEISHU_WEBHOOK_URL (see the operations guide).": "尚未配置任何告警渠道：请设置 TENDEROPS_ALERT_EMAILS、TENDEROPS_ALERT_WEBHOOK_URL、TENDEROPS_WECOM_WEBHOOK_URL、TENDEROPS_DINGTALK_WEBHOOK_URL 或 TENDEROPS_FEISHU_WEBHOOK_URL（见运维手册）。",
    "attempts": "尝试次数",
    "answer": "应答",
    "No alert channel is configured.": "尚未配置任何告警渠道。",
    "Open the alert log": "打开告警日志",
    "Alert log": "告警日志",
    "raised at": "触发时间",
    "event": "事件",
    "facts": "详情",
    "deliveries": "投递",
    "How each channel shows a test message": "各渠道如何显示测试消息",
    "… %(count)d more lines": "…… 另有 %(count)d 行",
    "unknown": "未知",
    "running longer than its kind's timeout": "运行时间超过该类型的超时阈值",
    "silent longer than its kind's timeout": "无进展时间超过该类型的超时阈值",
    "running longer than the maximum run time": "运行时间超过最长运行时间",
    "the health endpoint": "健康检查接口",
    "manage.py tenderops_watchdog": "manage.py tenderops_watchdog",
    "the monitor itself": "监控本身",
    "%(count)d run": "%(count)d 个任务",
    "timeout %(minutes)s min": "超时 %(minutes)s 分钟",
    "the monitor failed %(count)d stuck run": "监控已将 %(count)d 个卡住的任务标记为失败",
    "Rule: %(rule)s.": "规则：%(rule)s。",
    "Open these runs in the admin": "在管理后台查看这些任务",
    "%(count)d stuck run left running (report mode)": "%(count)d 个卡住的任务未处理（仅报告模式）",
    "TENDEROPS_MONITOR_MODE=report: the monitor fails nothing.": "TENDEROPS_MONITOR_MODE=report：监控不会将任何任务标记为失败。",
    "Open the stuck runs in the admin": "在管理后台查看卡住的任务",
    "%(count)d run waiting longer than %(minutes)s minutes": "%(count)d 个任务排队超过 %(minutes)s 分钟",
    "oldest waiting %(minutes)s min": "最长已等待 %(minutes)s 分钟",
    "Are the workers running and taking runs from the queue?": "worker 是否在运行并从队列中领取任务？",
    "Open the pending runs in the admin": "在管理后台查看排队中的任务",
    "%(count)d run finished after tenderops had failed it": "%(count)d 个任务在被 tenderops 标记失败后又成功完成",
    "suggested %(minutes)s min": "建议 %(minutes)s 分钟",
    "These runs were alive: their kind's timeout is probably too short.": "这些任务其实仍在运行：该类型的超时阈值可能过短。",
    "Open the statistics": "查看统计",
    "%(kind)s is failing: %(rate)s in the last hour": "%(kind)s 失败率激增：最近一小时 %(rate)s",
    "%(failed)s of %(finished)s finished runs failed in the last hour.": "最近一小时结束的 %(finished)s 个任务中有 %(failed)s 个失败。",
    "Failure rate over the 7 days before: %(rate)s.": "此前 7 天的失败率：%(rate)s。",
    "Most frequent error: %(error)s": "最常见的错误：%(error)s",
    "Open the failed runs in the admin": "在管理后台查看失败的任务",
    "Last run: %(when)s.": "上次运行：%(when)s。",
    "It has never run.": "监控从未运行。",
    "It should run every %(minutes)s minutes: is python manage.py qcluster running?": "监控应每 %(minutes)s 分钟运行一次：python manage.py qcluster 是否在运行？",
    "Noticed by: %(source)s.": "发现者：%(source)s。",
    "the monitor is stale": "监控已停滞",
    "The monitor runs again; stuck runs are being rescued.": "监控已恢复运行，卡住的任务正在被处理。",
    "the monitor has recovered": "监控已恢复",
    "A test message, sent by %(who)s. If you can read it, this channel works.": "这是一条测试消息，由 %(who)s 发送。能看到这条消息，说明此渠道可用。",
    "test message": "测试消息",
    "You do not have permission to view runs.": "您没有查看任务的权限。",
    "monitor failed stuck runs": "监控处理了卡住的任务",
    "stuck runs not failed (report mode)": "卡住的任务未处理（仅报告模式）",
    "runs waiting too long": "任务排队过久",
    "late finishes": "迟到的完成",
    "failure spike": "失败率激增",
    "monitor stale": "监控停滞",
    "monitor recovered": "监控恢复",
    "e-mail": "邮件",
    "JSON webhook": "JSON Webhook",
    "WeCom": "企业微信",
    "DingTalk": "钉钉",
    "Feishu / Lark": "飞书 / Lark",
    "alert": "告警",
    "alerts": "告警",
    "Can send a test alert": "可以发送测试告警",
    "sending": "发送中",
    "retrying": "等待重试",
    "sent": "已发送",
    "configuration error": "配置错误",
    "next attempt": "下次尝试",
    "updated at": "更新时间",
    "alert delivery": "告警投递",
    "alert deliveries": "告警投递",
    "network or server error": "网络或服务器错误",
    "throttled": "被限流",
    "rejected": "被拒绝",
    "attempt": "第几次",
    "HTTP status": "HTTP 状态",
    "paused until": "暂停至",
    "alert attempt": "告警发送尝试",
    "alert attempts": "告警发送尝试",
    "would fail stuck runs (report mode)": "本会标记卡住的任务失败（报告模式）",
    "why": "原因",
    "silent minutes": "静默分钟数",
    "finished late at": "迟到完成于",
    "fingerprint": "指纹",
    "first seen": "首次看到",
    "last change seen": "最后一次看到变化",
    "changes seen": "看到的变化次数",
    "run observation": "任务观察记录",
    "run observations": "任务观察记录",
    "by its last sign of life": "按最后生命迹象",
    "by its age": "按运行时长",
    "fail them": "标记失败",
    "only report them": "仅报告",
    "silent too long": "静默过久",
    "over the maximum runtime": "超过最长运行时间",
    "running too long": "运行过久",
    "pending too long": "排队过久",
    "marked failed by hand": "人工标记失败",
    "signs of life": "生命迹象",
    "Silent": "静默",
    "Waiting": "等待中",
    "Over max runtime": "超过最长运行时间",
    "Failed by tenderops, then finished": "被 tenderops 标记失败后又完成",
    "last sign of life": "最后生命迹象",
    "observed by tenderops": "tenderops 的观察",
    "Not observed (tenderops observes pending and running runs).": "未观察（tenderops 只观察排队中和运行中的任务）。",
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
