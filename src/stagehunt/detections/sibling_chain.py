"""sibling_chain — stages run one after another by one shell: sibling processes under a common
parent (a shell or script host from `chain_parents`) reach different counted addresses, together
at least `min_ips`, within the window (`bash -c 'curl A; curl B'`, `cmd /c stage1 & stage2`).

Each stage alone reaches one address and so escapes multi_stage_c2; the chain does not. Children
that all reach the same addresses are no chain. Exclusions apply to the children.
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
    first_contacts,
    hhmm,
    port_reasons,
    quoted,
    span_text,
    start_evidence,
)
from stagehunt.findings import Finding, iso


def sql(cfg: Config) -> str:
    parents = ", ".join("'" + p.lower().replace("'", "''") + "'" for p in cfg.detection.chain_parents) or "NULL"
    source = f"""
        SELECT c.pkey, c.time, c.ip, c.port, c.protocol, c.source_file, c.source_line, c.source_record, k.parent_key
        FROM conn c JOIN ctx k USING (pkey) JOIN proc p ON p.key = k.parent_key
        WHERE NOT k.excluded AND lower(base_name_of(p.image)) IN ({parents})"""
    return f"""
        WITH {bursts_sql(source, "parent_key", cfg, "AND count(DISTINCT c.pkey) >= 2")}, sets AS (
            SELECT pkey, parent_key, list(DISTINCT ip ORDER BY ip) AS ipset FROM g GROUP BY pkey, parent_key
        ), per_child AS (  -- several children, and not all with the same address set
            SELECT f.gkey, f.burst, list(DISTINCT s.pkey) AS children, count(DISTINCT s.ipset) AS n_sets
            FROM found f JOIN sets s ON s.parent_key = f.gkey
            GROUP BY f.gkey, f.burst
        )
        SELECT f.*, pc.children, pc.n_sets, sh.image AS shell_image, she.command_line AS shell_command_line,
               sh.pid AS shell_pid, sh.guid AS shell_guid, sh.host, she."user",
               sh.time AS shell_start_time, she.source_file AS shell_start_file,
               line_of_row(she.source_line, she.rowid) AS shell_start_line,
               she.source_record AS shell_start_record,
               (SELECT list({{'image': k.image, 'pid': k.pid, 'command_line': k.command_line}} ORDER BY k.start_time)
                FROM ctx k WHERE list_contains(pc.children, k.pkey)) AS stages
        FROM found f JOIN per_child pc USING (gkey, burst) JOIN proc sh ON sh.key = f.gkey
        JOIN events she ON she.rowid = sh.erow
        WHERE pc.n_sets >= 2
        ORDER BY f.first_time
    """


def build(row: dict[str, Any], cfg: Config) -> Finding:
    contacts = first_contacts(row["conns"])
    span = (row["last_time"] - row["first_time"]).total_seconds()
    stages = row["stages"] or []
    shell = base_name(row["shell_image"])
    last = stages[-1] if stages else {"image": None, "pid": None, "command_line": None}
    listing = "; ".join(f"{base_name(s['image'])} (pid {s['pid']}): {quoted(s['command_line']) or '?'}"
                       for s in stages[:6])
    reasons = [
        f"{shell} (pid {row['shell_pid']}) ran {len(stages)} stages that reached different addresses: {listing}",
        f"together they reached {row['n_ips']} distinct addresses within {span_text(span)}: {contacts_text(contacts)}",
        f"rule: children of one shell with different address sets, at least {cfg.detection.min_ips} addresses "
        f"within the {format_duration(cfg.detection.window)} window",
        f"shell started {hhmm(row['shell_start_time'])}: {quoted(row['shell_command_line']) or row['shell_image']}",
    ]
    extra, _ = port_reasons(row["ports"], cfg)
    reasons += extra
    shell_row = {k.replace("shell_", ""): v for k, v in row.items() if k.startswith("shell_")}
    shell_row["context_known"] = True
    evidence = start_evidence(shell_row) + conn_evidence(row["conns"], None)
    return Finding(
        detection_type="sibling_chain", host=row["host"], user=row["user"], image=last["image"],
        command_line=last["command_line"], pid=last["pid"], process_guid=None, parent_image=row["shell_image"],
        parent_command_line=row["shell_command_line"], parent_pid=row["shell_pid"],
        parent_process_guid=row["shell_guid"], unique_external_ips=row["n_ips"],
        ip_list=[ip for ip, _, _ in contacts], port_list=row["ports"] or [], connection_count=row["n_conns"],
        first_contact=iso(row["first_time"]), last_contact=iso(row["last_time"]), duration_mins=round(span / 60, 1),
        strong_indicator=row["n_ips"] >= cfg.detection.strong_ips, confidence="high", reasons=reasons,
        evidence=evidence, context_known=True,
    )


DETECTION = Detection(
    id="sibling_chain",
    title="Stages run by one shell reach different addresses (sibling chain)",
    description=__doc__.strip().splitlines()[0],
    sql=sql,
    build=build,
)
