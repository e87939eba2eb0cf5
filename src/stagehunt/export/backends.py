"""pySigma glue shared by the Splunk, ES|QL and KQL targets: the import check and the base-rule filter.

pySigma and its backends are the optional extra `stagehunt[export]`; nothing here is imported by the
CLI until such a target is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from stagehunt.export.model import Spec
from stagehunt.export.sigma import base_rule, dump

EXTRA_INSTALL = "pip install 'stagehunt[export]'"
PACKAGES = {  # target -> (module to import, PyPI package)
    "splunk": ("sigma.backends.splunk", "pysigma-backend-splunk"),
    "esql": ("sigma.backends.elasticsearch", "pysigma-backend-elasticsearch"),
    "kql": ("sigma.backends.kusto", "pysigma-backend-kusto"),
}


class MissingExtra(RuntimeError):
    """A target needs packages that are not installed; the message says what to install."""


def require(target: str) -> None:
    """Import pySigma and the target's backend, or raise MissingExtra naming the packages."""
    module, package = PACKAGES[target]
    missing = []
    for mod, pkg in (("sigma.collection", "pysigma"), (module, package)):
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        raise MissingExtra(f"--target {target} converts the Sigma rule with pySigma, which is not installed "
                           f"(missing: {', '.join(missing)}). Install it with: {EXTRA_INSTALL}  "
                           f"(or: pip install {' '.join(missing)})")


def filter_rule(spec: Spec, drop: tuple[str, ...] = ()) -> Any:
    """The base rule without destination lists (outbound + exclusions), parsed by pySigma.

    The SIEM targets write the destination scope themselves in a compact native form: the full
    CIDR lists (hundreds of entries) overflow query-length limits such as Sentinel's, and they are
    where the backends err (Kusto tests IPv6 with ipv4_is_in_range; none unwraps ::ffff:a.b.c.d).
    """
    from sigma.collection import SigmaCollection

    # The base rule alone: beside its correlation it is a `generate: false` building block that
    # backends do not emit on their own.
    rule = base_rule(spec, text_guard=False, scope=False)
    del rule["fields"]  # backends would append their own `| table`/`project` of these
    detection = rule["detection"]
    for name in drop:  # sections a target writes itself (`drop` names them)
        detection.pop(name, None)
    if not any(k.startswith("filter_") for k in detection):
        detection["condition"] = "outbound"
    return SigmaCollection.from_yaml(dump(rule)).rules[0]


def convert(backend: Any, rule: Any, allow_empty: bool = False) -> str:
    """One query from a backend, or an error naming the backend (a conversion must never half-succeed).

    allow_empty: "" when the pipeline dropped every condition (microsoft_xdr drops `Initiated`, so a rule
    with no exclusions left converts to nothing).
    """
    queries = backend.convert_rule(rule)
    if allow_empty and not queries:
        return ""
    if len(queries) != 1 or not isinstance(queries[0], str):
        raise RuntimeError(f"{type(backend).__name__} returned {len(queries)} queries for the base rule")
    return queries[0]
