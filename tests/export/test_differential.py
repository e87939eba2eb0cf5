"""The exported Sigma rule means what `hunt` means: run its pySigma SQLite conversion (a sliding
correlation window, unlike the DuckDB backend, which ignores the timespan) on scenario telemetry in a
table of Sysmon field names, and compare the groups it flags with the multi_stage_c2 findings of
`hunt` on the same records under the same configuration.

hunt's findings are taken before scoring and suppression (engine.run): the exported rules carry the
detection, not stagehunt's ranking.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import export_scenarios as sc
import orjson
import pytest

from stagehunt import api, engine, sources
from stagehunt.config import Config
from stagehunt.diagnostics import Diagnostics
from stagehunt.export import export

pytest.importorskip("sigma.backends.sqlite")

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation

SEED_TUNED = Config().with_overrides(
    detection={"group_by": "seed"},
    scope={"home_networks": ("81.2.69.0/24",)},
    exclusions={"images": ("updater.exe", "C:\\Tools\\**\\sync?.exe"), "users": ("CORP\\svc_backup",),
                "hosts": ("build-01",), "destinations": ("52.84.0.0/15",), "ports": (123,)},
)
INTERNAL = Config().with_overrides(detection={"min_ips": 3, "strong_ips": 4, "window": 3600},
                                   scope={"count_internal": True})


def sysmon_pipeline() -> ProcessingPipeline:
    # What pySigma's Sysmon pipeline does for this log source: network_connection is event 3.
    add_eid = AddConditionTransformation({"EventID": 3})
    return ProcessingPipeline(name="sysmon network_connection", priority=10, items=[
        ProcessingItem(add_eid, rule_conditions=[LogsourceCondition(category="network_connection")])])


def sigma_groups(cfg: Config, procs: list[sc.Proc]) -> set[tuple[str, ...]]:
    """Groups flagged by the SQLite conversion of the exported Sigma rule, lower-cased, guid braces off."""
    # Hundreds of CIDRs expand to LIKE patterns; short operand chains keep SQLite under its depth limit.
    backend = sqliteBackend(sysmon_pipeline(), timestamp_field="UtcTime", collate_nocase=True,
                            max_flat_operands=16)
    queries = backend.convert(SigmaCollection.from_yaml(export("sigma", cfg)))
    assert len(queries) == 1  # the correlation only: the base rule is `generate: false`
    con = sc.sqlite_table(procs)
    con.create_function("REGEXP", 2, lambda rx, v: v is not None and re.search(rx, v) is not None)
    out = set()
    for row in con.execute(queries[0]).fetchall():
        keys = orjson.loads(row[1])  # group_keys: {"Computer": ..., "User": ..., ...}
        out.add(tuple(str(v).strip("{}").lower() for v in keys.values()))
    return out


def hunt_groups(cfg: Config, procs: list[sc.Proc], tmp_path: Path) -> set[tuple[str, ...]]:
    path = sc.write_jsonl(tmp_path / "scenarios.jsonl", procs)
    with api.open_store(cfg) as store:
        sources.load(store, list(sources.expand([str(path)], store.tmpdir)), "auto", Diagnostics())
        findings = engine.run(store, cfg, ["multi_stage_c2"])
    per_process = cfg.detection.group_by == "process"
    return {(f.host.lower(), f.user.lower(), f.image.lower(), *([f.process_guid.strip("{}").lower()]
             if per_process else [])) for f in findings}


def all_procs() -> list[sc.Proc]:
    return [p for procs in sc.scenario_set().values() for p in procs]


def images(groups: set[tuple[str, ...]]) -> set[str]:
    return {g[2].replace("\\", "/").rsplit("/", 1)[-1] for g in groups}


def test_sqlite_is_new_enough() -> None:
    assert sqlite3.sqlite_version_info >= (3, 38, 0)  # the correlation plan needs JSON functions


@pytest.mark.parametrize(("name", "cfg", "expected"), [
    ("default, per process", Config(), {
        "powershell.exe", "k.exe", "curl", "rundll32.exe", "a.exe", "chrome_update.exe", "sync1.exe", "i.exe",
        "g.exe", "j.exe", "f.exe", "l.exe", "updater.exe", "h.exe"}),
    ("seed grouping, tuned scope and exclusions", SEED_TUNED, {
        "powershell.exe", "k.exe", "curl", "rundll32.exe", "a.exe", "chrome_update.exe", "l.exe", "d.exe"}),
    ("internal destinations, 3 in 1h", INTERNAL, {"svcupdate.exe", "k.exe"}),
])
def test_sigma_rule_flags_what_hunt_flags(name: str, cfg: Config, expected: set[str], tmp_path: Path) -> None:
    procs = all_procs()
    hunted = hunt_groups(cfg, procs, tmp_path)
    assert images(hunted) == expected, name  # the scenarios exercise what they claim to
    assert sigma_groups(cfg, procs) == hunted


def test_command_line_grouping_is_the_one_known_difference(tmp_path: Path) -> None:
    """group_by = seed also groups by command line, from the process start; Sysmon EID 3 carries no
    CommandLine, so the Sigma rule groups by host, user and image and joins the two instances."""
    procs = sc.command_line_split()
    assert hunt_groups(SEED_TUNED, procs, tmp_path) == set()
    assert images(sigma_groups(SEED_TUNED, procs)) == {"n.exe"}
