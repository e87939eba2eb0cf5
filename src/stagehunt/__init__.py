"""stagehunt: find multi-stage command-and-control channels (MITRE ATT&CK T1104) in endpoint telemetry."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from stagehunt.api import HuntResult, hunt, hunt_detailed
    from stagehunt.config import Config, load_config

__all__ = ["Config", "HuntResult", "hunt", "hunt_detailed", "load_config"]

# The API's names are imported when first used: a program that only reads telemetry (`inspect`, a reader
# of its own) then does not load the engine, the detections and scoring (~0.05 s of every start).
_HOMES = {"Config": "stagehunt.config", "load_config": "stagehunt.config",
          "HuntResult": "stagehunt.api", "hunt": "stagehunt.api", "hunt_detailed": "stagehunt.api"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'stagehunt' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # once found, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
