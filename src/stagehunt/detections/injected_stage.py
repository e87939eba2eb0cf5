"""injected_stage — a process opens another with rights that allow code injection, and the target
then reaches a counted address that neither had reached before (Lazarus-style injected stage).

Injection rights: PROCESS_VM_WRITE (0x20) or PROCESS_CREATE_THREAD (0x2) in GrantedAccess (so
PROCESS_ALL_ACCESS counts, read-only access such as 0x1000 or 0x1410 does not). A parent's handle to
its own child does not count, nor csrss.exe's: starting a process yields such handles (DCOM's
svchost and csrss.exe on EXCEL.EXE in real data). Exclusions apply to the target (the later stage).
"""

from __future__ import annotations

from typing import Any

from stagehunt.config import Config, format_duration
from stagehunt.detections import Detection
from stagehunt.detections.common import (
    base_name,
    conn_stats_sql,
    contacts_text,
    first_contacts,
    hhmm,
    later_stage_finding,
    span_text,
)
from stagehunt.findings import Evidence, Finding, iso
from stagehunt.processes import keyed_sql, latest_start_sql

INJECT_RIGHTS = 0x20 | 0x2  # PROCESS_VM_WRITE | PROCESS_CREATE_THREAD
# The Windows subsystem server opens every new process with full access as part of creating it.
CREATION_ACCESSOR = r"[a-z]:\\windows\\system32\\csrss\.exe"


def sql(cfg: Config) -> str:
    w = int(cfg.detection.window)
    return f"""
        WITH pa AS (
            SELECT rowid AS erow, * EXCLUDE (source_line), line_of_row(source_line, rowid) AS source_line
            FROM events WHERE kind = 'process_access'
              AND (access_mask(granted_access) & {INJECT_RIGHTS}) <> 0
        ), acc AS (
            SELECT erow, pkey AS skey, host, time AS atime, granted_access, image AS s_image, pid AS s_pid,
                   target_image, target_pid, target_guid,
                   source_file AS a_file, source_line AS a_line, source_record AS a_record
            FROM ({keyed_sql("pa", row_id="erow")})
        ), keyed AS (  -- the target's process key: its guid, else its pid's latest start before the access
            SELECT a.* EXCLUDE (started),
                   CASE WHEN norm_guid(a.target_guid) IS NOT NULL THEN guid_key(a.host, a.target_guid)
                        ELSE pid_key(a.host, a.target_pid, a.started) END AS tkey
            FROM ({latest_start_sql("acc", "target_pid", "atime", "erow")}) a
        ), first_acc AS (  -- handles that come with starting a process are not injection
            SELECT ky.* FROM keyed ky LEFT JOIN proc tp ON tp.key = ky.tkey
            WHERE ky.tkey IS NOT NULL AND ky.tkey <> ky.skey AND tp.parent_key IS DISTINCT FROM ky.skey
              AND NOT regexp_full_match(lower(coalesce(ky.s_image, '')), '{CREATION_ACCESSOR}')
            QUALIFY row_number() OVER (PARTITION BY ky.tkey ORDER BY ky.atime, ky.erow) = 1
        ), before AS (  -- what source and target had reached before the access (two equi-joins: fast)
            SELECT fa.tkey, c.ip FROM first_acc fa JOIN conn c ON c.pkey = fa.skey AND c.time < fa.atime
            UNION ALL
            SELECT fa.tkey, c.ip FROM first_acc fa JOIN conn c ON c.pkey = fa.tkey AND c.time < fa.atime
        ), known AS (
            SELECT fa.tkey, list(DISTINCT b.ip) FILTER (b.ip IS NOT NULL) AS before_ips
            FROM first_acc fa LEFT JOIN before b USING (tkey) GROUP BY fa.tkey
        ), hits AS (
            SELECT fa.*, kn.before_ips, c.*
            FROM first_acc fa JOIN known kn USING (tkey)
            JOIN ctx k ON k.pkey = fa.tkey AND NOT k.excluded
            JOIN conn c ON c.pkey = fa.tkey AND c.time >= fa.atime AND c.time <= fa.atime + INTERVAL {w} SECONDS
            WHERE NOT list_contains(coalesce(kn.before_ips, []::VARCHAR[]), c.ip)
        ), found AS (
            SELECT tkey AS pkey, any_value(skey) AS skey, any_value(atime) AS atime,
                   any_value(granted_access) AS granted_access, any_value(s_image) AS s_image,
                   any_value(s_pid) AS s_pid, any_value(a_file) AS a_file, any_value(a_line) AS a_line,
                   any_value(a_record) AS a_record, any_value(before_ips) AS before_ips, {conn_stats_sql("")}
            FROM hits GROUP BY tkey
        )
        SELECT f.*, k.* EXCLUDE (pkey), sp.image AS src_image, spe.command_line AS src_command_line,
               sp.pid AS src_pid, sp.guid AS src_guid
        FROM found f JOIN ctx k USING (pkey) LEFT JOIN proc sp ON sp.key = f.skey
        LEFT JOIN events spe ON spe.rowid = sp.erow
        ORDER BY first_time
    """


def build(row: dict[str, Any], cfg: Config) -> Finding:
    src = row["src_image"] or row["s_image"]
    spid = row["src_pid"] if row["src_pid"] is not None else row["s_pid"]
    after = (row["first_time"] - row["atime"]).total_seconds()
    reasons = [
        f"{base_name(src)} (pid {spid}) opened {base_name(row['image'])} (pid {row['pid']}) with access "
        f"{row['granted_access']} at {hhmm(row['atime'])}: write or thread-creation rights allow code injection",
        f"{span_text(after)} later the target reached {contacts_text(first_contacts(row['conns']))}, which neither "
        f"process had reached before ({', '.join(sorted(row['before_ips'] or [])) or 'no counted address'})",
        f"within the {format_duration(cfg.detection.window)} window",
        "strong indicator: new infrastructure right after an injection-capable handle",
    ]
    access = Evidence(row["a_file"], row["a_line"], row["a_record"], iso(row["atime"]), "process_access",
                      f"{base_name(src)} -> {base_name(row['image'])} access {row['granted_access']}")
    return later_stage_finding("injected_stage", row, earlier=(src, spid, row["src_command_line"], row["src_guid"]),
                               earlier_ips=row["before_ips"] or [], reasons=reasons, first_evidence=access, cfg=cfg)


DETECTION = Detection(
    id="injected_stage",
    title="An injection-capable handle precedes new infrastructure (injected stage)",
    description=__doc__.strip().splitlines()[0],
    sql=sql,
    build=build,
    needs=("process_access",),
)
