"""stagehunt: find multi-stage command-and-control channels (MITRE ATT&CK T1104) in endpoint telemetry."""

__version__ = "0.1.0"
