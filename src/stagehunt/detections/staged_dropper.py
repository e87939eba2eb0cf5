"""staged_dropper — a process writes a file, that file is started, and the new process reaches a
counted address its writer never did (Bazar-style loader dropping the next stage).

The started process need not be the writer's child (it may run through cmd, a service or a task):
the link is the file path, on the same host, started after it was written. Exclusions apply to the
started (later) stage.
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
from stagehunt.processes import keyed_sql


def sql(cfg: Config) -> str:
    w = int(cfg.detection.window)
    return f"""
        WITH fc AS (
            SELECT rowid AS erow, * EXCLUDE (source_line), line_of_row(source_line, rowid) AS source_line
            FROM events WHERE kind = 'file_create' AND target_filename IS NOT NULL
        ), writes AS (
            SELECT pkey AS wkey, host, lower(replace(target_filename, '/', '\\')) AS f, target_filename,
                   time AS wtime, image AS w_image, pid AS w_pid, source_file AS w_file, source_line AS w_line,
                   source_record AS w_record, erow AS w_row
            FROM ({keyed_sql("fc", row_id="erow")})
        ), pairs AS (  -- the latest write of the file before the process started from it
            SELECT w.*, p.key AS ckey, p.time AS ctime
            FROM writes w JOIN proc p
              ON p.host IS NOT DISTINCT FROM w.host AND lower(replace(p.image, '/', '\\')) = w.f AND p.time >= w.wtime
            QUALIFY row_number() OVER (PARTITION BY p.key ORDER BY w.wtime DESC, w.w_row DESC) = 1
        ), writer_ips AS (
            SELECT pkey, list(DISTINCT ip) AS ips FROM conn GROUP BY pkey
        ), hits AS (
            SELECT pr.*, coalesce(wi.ips, []::VARCHAR[]) AS writer_ips, c.*
            FROM pairs pr JOIN ctx k ON k.pkey = pr.ckey AND NOT k.excluded
            JOIN conn c ON c.pkey = pr.ckey
            LEFT JOIN writer_ips wi ON wi.pkey = pr.wkey
            WHERE NOT list_contains(coalesce(wi.ips, []::VARCHAR[]), c.ip)
              AND c.time <= pr.wtime + INTERVAL {w} SECONDS
        ), found AS (
            SELECT ckey AS pkey, any_value(wkey) AS wkey, any_value(target_filename) AS target_filename,
                   any_value(wtime) AS wtime, any_value(w_image) AS w_image, any_value(w_pid) AS w_pid,
                   any_value(w_file) AS w_file, any_value(w_line) AS w_line, any_value(w_record) AS w_record,
                   any_value(writer_ips) AS writer_ips, {conn_stats_sql("")}
            FROM hits GROUP BY ckey
        )
        SELECT f.*, k.* EXCLUDE (pkey), wp.image AS writer_image, wpe.command_line AS writer_command_line,
               wp.pid AS writer_pid, wp.guid AS writer_guid
        FROM found f JOIN ctx k USING (pkey) LEFT JOIN proc wp ON wp.key = f.wkey
        LEFT JOIN events wpe ON wpe.rowid = wp.erow
        ORDER BY first_time
    """


def build(row: dict[str, Any], cfg: Config) -> Finding:
    writer = row["writer_image"] or row["w_image"]
    wpid = row["writer_pid"] if row["writer_pid"] is not None else row["w_pid"]
    after = (row["first_time"] - row["wtime"]).total_seconds()
    wrote_ips = row["writer_ips"]
    reasons = [
        f"{base_name(writer)} (pid {wpid}) wrote {row['target_filename']} at {hhmm(row['wtime'])}; "
        f"it was started at {hhmm(row['start_time'])} as pid {row['pid']}",
        f"the dropped stage reached {contacts_text(first_contacts(row['conns']))}, "
        + (f"none of which its writer reached ({', '.join(sorted(wrote_ips))})" if wrote_ips
           else "while its writer reached no counted address"),
        f"first new contact {span_text(abs(after))} {'after' if after >= 0 else 'before'} the write, "
        f"within the {format_duration(cfg.detection.window)} window",
        "strong indicator: a written file became a process with its own, new infrastructure",
    ]
    write = Evidence(row["w_file"], row["w_line"], row["w_record"], iso(row["wtime"]), "file_create",
                     f"{base_name(writer)} wrote {row['target_filename']}")
    return later_stage_finding("staged_dropper", row, earlier=(writer, wpid, row["writer_command_line"],
                                                               row["writer_guid"]),
                               earlier_ips=wrote_ips, reasons=reasons, first_evidence=write, cfg=cfg)


DETECTION = Detection(
    id="staged_dropper",
    title="A dropped file runs and reaches new infrastructure (staged dropper)",
    description=__doc__.strip().splitlines()[0],
    sql=sql,
    build=build,
    needs=("file_create",),
)
