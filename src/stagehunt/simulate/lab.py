"""Write scenarios to a lab folder: DIR/<scenario>/<format>.<ext> in each applicable format, and
DIR/<scenario>/expected.json beside them. Only files are written; nothing is sent anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from stagehunt.config import ScopeConfig
from stagehunt.simulate.auditd_writer import write_auditd
from stagehunt.simulate.model import Scenario
from stagehunt.simulate.scenarios import needs_count_internal
from stagehunt.simulate.writers import WRITERS, Writer

EXPECTED_FILE = "expected.json"


@dataclass(frozen=True)
class LabFormat:
    name: str  # the writer's name, and the reader `stagehunt inspect` must recognise the file as
    ext: str
    platforms: tuple[str, ...]  # scenario platforms the format exists for
    writer: Writer
    title: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.ext}"


_BOTH = ("windows", "linux")
# Windows Event XML exports exist only on Windows; syslog and auditd only on Linux. The JSON shippers
# (NXLog-style flat, Winlogbeat/Elastic Agent ECS, Sumo CSE records) carry Sysmon for Linux as well.
FORMATS: dict[str, LabFormat] = {f.name: f for f in (
    LabFormat("flat", "jsonl", _BOTH, WRITERS["flat"], "flat JSON lines (NXLog, OTRF, Splunk exports)"),
    LabFormat("ecs", "jsonl", _BOTH, WRITERS["ecs"], "Winlogbeat / Elastic Agent ECS JSON"),
    LabFormat("sumo-cse", "jsonl", _BOTH, WRITERS["sumo-cse"], "Sumo Logic Cloud SIEM sec_record JSON"),
    LabFormat("xml", "xml", ("windows",), WRITERS["xml"], "Windows Event XML (wevtutil qe /f:xml)"),
    LabFormat("syslog", "log", ("linux",), WRITERS["syslog"], "Sysmon for Linux syslog lines"),
    LabFormat("auditd", "log", ("linux",), write_auditd, "Linux auditd raw records (audit.log)"),
)}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def applicable(scenario: Scenario, formats: Iterable[str] | None = None) -> list[LabFormat]:
    """The requested formats (default: all) that exist for the scenario's platform, in FORMATS order."""
    wanted = set(formats) if formats else set(FORMATS)
    return [f for f in FORMATS.values() if f.name in wanted and scenario.platform in f.platforms]


def expected_document(scenario: Scenario, formats: list[LabFormat], scope_cfg: ScopeConfig) -> dict:
    doc = scenario.to_dict()
    doc["files"] = {f.name: f.file_name for f in formats}
    internal = scenario.attack and needs_count_internal(scenario.c2, scope_cfg)
    doc["hunt_with"] = {"count_internal": internal}
    if internal:
        doc["note"] = ("some C2 addresses are internal: hunt with --count-internal (config [scope] "
                       "count_internal = true), or they are not counted and nothing is found")
    return doc


def write_scenario(out_dir: Path, scenario: Scenario, formats: Iterable[str] | None = None,
                   scope_cfg: ScopeConfig | None = None) -> list[Path]:
    """Write one scenario's applicable formats and its expected.json; the files written (none if no
    requested format applies)."""
    chosen = applicable(scenario, formats)
    if not chosen:
        return []
    folder = out_dir / scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in chosen:
        path = folder / fmt.file_name
        with open(path, "wb") as out:
            fmt.writer(scenario.events, out)
        written.append(path)
    doc = expected_document(scenario, chosen, scope_cfg or ScopeConfig())
    (folder / EXPECTED_FILE).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return [*written, folder / EXPECTED_FILE]
