"""Export the tuned detection to other platforms, from the same Config that drives `hunt`.

One registry, one line per target: name -> how to render it from a Spec (the config, read once).
Targets marked `needs_pysigma` convert the Sigma rule with a pySigma backend (the optional extra
`stagehunt[export]`); the others are pure Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stagehunt.config import Config
from stagehunt.export import esql, kql, sigma, splunk, sumo, sumo_rules
from stagehunt.export.backends import MissingExtra
from stagehunt.export.model import Spec, build_spec
from stagehunt.export.sumo_rules import ExportError


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    suffix: str  # file name extension for this target's output
    render: Callable[[Spec], str]
    needs_pysigma: bool = False


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("sigma", "Sigma base rule + value_count correlation (YAML)", "yml", sigma.render),
    Target("sumo-query", "Sumo Logic Cloud SIEM search over sec_record", "sumo", sumo.render),
    Target("sumo-rule", "Sumo Logic Cloud SIEM Aggregation rule, REST API body (JSON)", "json",
           sumo_rules.render_rest),
    Target("sumo-terraform", "Sumo Logic Cloud SIEM Aggregation rule, Terraform sumologic_cse_aggregation_rule",
           "tf", sumo_rules.render_terraform),
    Target("splunk", "Splunk SPL over Sysmon (pySigma Splunk backend)", "spl", splunk.render, needs_pysigma=True),
    Target("esql", "Elastic ES|QL over ECS Sysmon data (pySigma ES|QL backend)", "esql", esql.render,
           needs_pysigma=True),
    Target("kql", "KQL for Defender XDR / Sentinel DeviceNetworkEvents (pySigma Kusto backend)", "kql", kql.render,
           needs_pysigma=True),
)}


def export(target: str, config: Config | None = None) -> str:
    """The detection tuned by `config` (default: the shipped defaults) as text for `target`."""
    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r}; choose one of: {', '.join(TARGETS)}")
    return TARGETS[target].render(build_spec(config or Config()))


__all__ = ["TARGETS", "ExportError", "MissingExtra", "Target", "export"]
