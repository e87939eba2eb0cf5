"""A detection is skipped when the event kinds it declares it needs are absent: the declarations must match
what its SQL reads, or it would be skipped where it could fire."""

from __future__ import annotations

import re

import pytest

from stagehunt.config import Config
from stagehunt.detections import DETECTIONS

ALWAYS_READ = {"network", "process_start"}  # through conn / proc / ctx, which every detection may use


@pytest.mark.parametrize("det_id", sorted(DETECTIONS))
def test_declared_needs_are_the_event_kinds_its_sql_reads(det_id: str) -> None:
    det = DETECTIONS[det_id]
    for cfg in (Config(), Config().with_overrides(detection={"window_mode": "tumbling", "group_by": "seed"})):
        read = set(re.findall(r"kind\s*=\s*'([a-z_]+)'", det.sql(cfg))) - ALWAYS_READ
        assert set(det.needs) == read
