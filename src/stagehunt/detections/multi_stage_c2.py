"""multi_stage_c2 — the seed's SingleProcessMultiStageC2, done right.

A non-excluded process (or, with group_by = "seed", a host/user/image/command-line group) reaches
at least `min_ips` distinct counted addresses within `window`. The window slides by default: every
connection opens a window, and overlapping qualifying windows merge into one burst, so one finding
per group and burst. `window_mode = "tumbling"` cuts time into fixed UTC buckets as the seed's
`timeslice 24h` does.
"""

from __future__ import annotations

from typing import Any

from stagehunt.config import Config, format_duration
from stagehunt.detections import Detection
from stagehunt.detections.common import (
    base_name,
    bursts_sql,
    conn_evidence,
    contacts_text,
    context_reason,
    first_contacts,
    port_reasons,
    span_text,
    start_evidence,
)
from stagehunt.findings import Finding, iso

# the seed's grouping, with the command line taken from the process start (EID 3 has none)
SEED_GROUP = "concat_ws('|', host, lower(\"user\"), lower(image), command_line)"


def sql(cfg: Config) -> str:
    gkey = "pkey" if cfg.detection.group_by == "process" else SEED_GROUP
    source = """
        SELECT c.pkey, c.time, c.ip, c.port, c.protocol, c.source_file, c.source_line, c.source_record,
               k.host, k.image, k.command_line, k."user"
        FROM conn c JOIN ctx k USING (pkey) WHERE NOT k.excluded"""
    return f"""
        WITH {bursts_sql(source, gkey, cfg)}
        SELECT f.*, k.* EXCLUDE (pkey) FROM found f JOIN ctx k USING (pkey)
        ORDER BY n_ips DESC, first_time
    """


def build(row: dict[str, Any], cfg: Config) -> Finding:
    d = cfg.detection
    n = row["n_ips"]
    strong = n >= d.strong_ips
    span = (row["last_time"] - row["first_time"]).total_seconds()
    contacts = first_contacts(row["conns"])
    mode = "sliding" if d.window_mode == "sliding" else "fixed (tumbling, UTC-aligned)"
    who = base_name(row["image"])
    if d.group_by == "seed" and row["n_processes"] > 1:
        who += f" ({row['n_processes']} process instances with the same host, user, image and command line)"
    reasons = [
        f"{who} reached {n} distinct {'counted' if cfg.scope.count_internal else 'external'} IPs "
        f"within {span_text(span)}: {contacts_text(contacts)}",
        f"rule: at least {d.min_ips} distinct IPs within a {mode} {format_duration(d.window)} window",
    ]
    if strong:
        reasons.append(f"confidence raised to high: {n} distinct IPs is at least strong_ips = {d.strong_ips}")
    extra, raised = port_reasons(row["ports"], cfg)
    reasons += extra
    reasons.append(context_reason(row))
    evidence = start_evidence(row) + conn_evidence(row["conns"], row["image"])
    if len(row["conns"]) > len(evidence):
        reasons.append(f"evidence lists the first {len(evidence)} of {len(row['conns'])} connections")
    return Finding(
        detection_type="multi_stage_c2", host=row["host"], user=row["user"], image=row["image"],
        command_line=row["command_line"], pid=row["pid"], process_guid=row["guid"],
        parent_image=row["parent_image"], parent_command_line=row["parent_command_line"],
        parent_pid=row["parent_pid"], parent_process_guid=row["parent_guid"],
        unique_external_ips=n, ip_list=[ip for ip, _, _ in contacts], port_list=row["ports"] or [],
        connection_count=row["n_conns"], first_contact=iso(row["first_time"]), last_contact=iso(row["last_time"]),
        duration_mins=round(span / 60, 1), strong_indicator=strong, confidence="high" if strong or raised else "medium",
        reasons=reasons, evidence=evidence, context_known=row["context_known"],
    )


DETECTION = Detection(
    id="multi_stage_c2",
    title="Process reaches several distinct external addresses (multi-stage C2)",
    description=__doc__.strip().splitlines()[0],
    sql=sql,
    build=build,
)
