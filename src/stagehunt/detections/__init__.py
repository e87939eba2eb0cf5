"""Detections: each one an id, its ATT&CK mapping, and its logic as SQL over the prepared tables.

The SQL is DuckDB's, kept to what `spark_sql.py` translates faithfully (no ASOF joins, no
`SELECT * REPLACE`, ordered lists on ascending keys), so the same text also runs on Spark;
`engine.py` prepares the tables it reads (`conn`, `ctx`, `proc`) and turns its rows into findings
with `build`, whichever engine ran it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stagehunt.config import Config
from stagehunt.findings import Finding


@dataclass(frozen=True)
class Detection:
    id: str
    title: str
    description: str
    sql: Callable[[Config], str]  # one row per finding
    build: Callable[[dict[str, Any], Config], Finding]
    technique: str = "T1104"
    tactic: str = "TA0011"  # Command and Control
    # event kinds beyond network connections and process starts it reads: without them it cannot fire, and
    # is not run (planning a detection's statement alone costs 15-65 ms)
    needs: tuple[str, ...] = ()


def _registry() -> dict[str, Detection]:
    from stagehunt.detections import (
        injected_stage,
        multi_stage_c2,
        parent_child_handoff,
        sibling_chain,
        staged_dropper,
    )

    return {d.id: d for d in (multi_stage_c2.DETECTION, parent_child_handoff.DETECTION, staged_dropper.DETECTION,
                              injected_stage.DETECTION, sibling_chain.DETECTION)}


DETECTIONS: dict[str, Detection] = _registry()
