"""stagehunt: find multi-stage command-and-control channels (MITRE ATT&CK T1104) in endpoint telemetry."""

__version__ = "0.1.0"

from stagehunt.api import HuntResult, hunt, hunt_detailed
from stagehunt.config import Config, load_config

__all__ = ["Config", "HuntResult", "hunt", "hunt_detailed", "load_config"]
