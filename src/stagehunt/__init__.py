"""stagehunt: find multi-stage command-and-control channels (MITRE ATT&CK T1104) in endpoint telemetry."""

__version__ = "0.1.0"

from stagehunt.api import HuntResult, hunt, hunt_detailed  # noqa: E402
from stagehunt.config import Config, load_config  # noqa: E402

__all__ = ["Config", "HuntResult", "hunt", "hunt_detailed", "load_config"]
