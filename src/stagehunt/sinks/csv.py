"""CSV: one row per finding; every cell neutralised against spreadsheet formula injection.

List fields are joined with ';' (each element neutralised too, since a spreadsheet in a locale whose
list separator is ';' may split the cell there), evidence is the list of `file:line` locations, and
every cell is quoted so no cell boundary depends on the reader's locale.
"""

from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path
from typing import Any, TextIO

from stagehunt.escape import csv_cell
from stagehunt.findings import Evidence, Finding
from stagehunt.sinks.base import Sink, scrub

_FIRST = ["uid", "detection_type", "technique", "severity", "confidence", "strong_indicator", "score", "host",
          "user", "image", "command_line", "pid", "process_guid", "parent_image", "parent_command_line",
          "parent_pid", "parent_process_guid", "unique_external_ips", "ip_list", "port_list", "connection_count",
          "first_contact", "last_contact", "duration_mins", "parent_ip_list", "new_ips", "context_known",
          "reasons", "evidence"]
# Any Finding field not named above still gets a column (at the end), so the CSV never silently drops one.
COLUMNS: list[str] = [c for c in _FIRST if c == "uid" or c in {f.name for f in fields(Finding)}] + [
    f.name for f in fields(Finding) if f.name not in _FIRST]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Evidence):
        return value.location()
    return str(value)


def cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = ";".join(csv_cell(_text(v)) for v in value)
    return csv_cell(scrub(_text(value)))


class CsvSink(Sink):
    def __init__(self, target: TextIO | str | Path):
        super().__init__(target)
        self._writer = csv.writer(self.stream, quoting=csv.QUOTE_ALL)
        self._writer.writerow([cell(c) for c in COLUMNS])

    def write(self, finding: Finding) -> None:
        self._writer.writerow([cell(finding.uid if c == "uid" else getattr(finding, c)) for c in COLUMNS])
