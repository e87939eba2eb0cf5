"""The package's public names: importable as documented, and loaded only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import stagehunt


def test_public_names_resolve_to_their_modules() -> None:
    from stagehunt import Config, HuntResult, hunt, hunt_detailed, load_config
    from stagehunt.api import HuntResult as api_result
    from stagehunt.api import hunt as api_hunt
    from stagehunt.api import hunt_detailed as api_detailed
    from stagehunt.config import Config as config_class
    from stagehunt.config import load_config as config_loader

    assert (hunt, hunt_detailed, HuntResult) == (api_hunt, api_detailed, api_result)
    assert (Config, load_config) == (config_class, config_loader)
    assert set(stagehunt.__all__) <= set(dir(stagehunt))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'hunts'"):
        stagehunt.hunts  # noqa: B018


def test_reading_telemetry_does_not_load_the_engine() -> None:
    # a fresh interpreter: this one has long imported everything
    code = ("import sys; from stagehunt import sources; from stagehunt.store import EventStore; "
            "print(sorted(m for m in ('stagehunt.engine', 'stagehunt.scoring', 'stagehunt.detections') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_api_names_each_stage_after_the_read() -> None:
    """What a progress display shows once the read is done (minutes of silence at 5 M events otherwise)."""
    from pathlib import Path

    from stagehunt.api import hunt_detailed

    seen: list[str] = []
    result = hunt_detailed([Path(__file__).parents[1] / "examples"], on_stage=seen.append)
    assert seen[0] == "building the process tree, scope and connections"
    assert seen[-1] == f"scoring {len(result.findings) + len(result.hidden)} findings"
    ran = [s.removeprefix("running ") for s in seen[1:-1]]
    assert "multi_stage_c2" in ran and "parent_child_handoff" in ran and len(ran) == len(set(ran))
