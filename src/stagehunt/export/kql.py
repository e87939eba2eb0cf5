"""KQL for Microsoft Defender XDR / Sentinel (DeviceNetworkEvents), via pySigma's Kusto backend.

Repairs of the backend and its microsoft_xdr pipeline:
  - `Initiated` is dropped without a word (DeviceNetworkEvents has no such column), so inbound
    connections would count: stagehunt keeps only outbound ActionTypes;
  - `Computer` is rejected as unknown: it is `DeviceName`;
  - IPv6 CIDRs go to ipv4_is_in_range, which never matches them: ipv6_is_in_range instead; and both
    return null for an address of the other family, which a `not(...)` turns into a dropped row:
    each test is coalesced to false;
  - no IPv4-mapped unwrapping: RemoteIP `::ffff:a.b.c.d` is unwrapped before any test.
The backend gets the rest right: case-insensitive `=~`/`endswith`, and DOMAIN\\name users split into
InitiatingProcessAccountDomain and InitiatingProcessAccountName. It has no correlation support; the
aggregation and the destination scope are stagehunt's.
"""

from __future__ import annotations

from typing import Any

from stagehunt.export import backends
from stagehunt.export.model import Spec, comment_block, summary_lines

INBOUND = '"InboundConnectionAccepted", "ListeningConnectionCreated"'
UNWRAP = (r'| extend RemoteIP = iff(RemoteIP matches regex @"(?i)^::ffff:\d{1,3}(\.\d{1,3}){3}$", '
          "substring(RemoteIP, 7), RemoteIP)")


def window_semantics(spec: Spec) -> str:
    w = spec.window_text
    if spec.sliding:
        return (f"sliding: a self-join counts, for every connection, the distinct addresses its group reaches "
                f"within {w} after it, as `stagehunt hunt` does (cost grows with the square of a group's "
                f"connections). As a Sentinel scheduled rule or Defender custom detection, look back at least "
                f"{w} plus the run frequency.")
    return (f"fixed buckets (tumbling): bin(Timestamp, {w}), aligned to the epoch in UTC; two stages either "
            "side of a bucket edge are missed. (pySigma's Kusto backend converts no correlation at all.)")


def _backend() -> Any:
    from sigma.backends.kusto import KustoBackend
    from sigma.pipelines.microsoftxdr import microsoft_xdr_pipeline
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    class Kusto(KustoBackend):
        def convert_condition_field_eq_val_cidr(self, cond: Any, state: Any) -> Any:
            net = cond.value.network
            fn = "ipv4_is_in_range" if net.version == 4 else "ipv6_is_in_range"
            return f'coalesce({fn}({self.escape_and_quote_field(cond.field)}, "{net}"), false)'

        def convert_condition_as_in_expression(self, cond: Any, state: Any) -> Any:
            # The backend writes number lists as strings for `in~` (RemotePort in~ ("53")), which
            # KQL will not compare with an int column: numbers get a plain `in`.
            from sigma.types import SigmaNumber

            if all(isinstance(arg.value, SigmaNumber) for arg in cond.args):
                values = ", ".join(str(arg.value) for arg in cond.args)
                return f"{self.escape_and_quote_field(cond.args[0].field)} in ({values})"
            return super().convert_condition_as_in_expression(cond, state)

    repairs = ProcessingPipeline(name="stagehunt XDR repairs", priority=5, items=[
        ProcessingItem(FieldMappingTransformation({"Computer": "DeviceName"}), identifier="stagehunt_xdr_host"),
    ])
    return Kusto(repairs + microsoft_xdr_pipeline())


def _kql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scope_clause(spec: Spec) -> str:
    def dyn(nets: tuple) -> str:
        return "dynamic([" + ", ".join(f'"{n}"' for n in nets) + "])"

    v4, v6 = spec.scope.ipv4_gaps(), spec.scope.ipv6_gaps()
    v4_test = "isnotnull(parse_ipv4(RemoteIP))" + (
        f" and not(coalesce(ipv4_is_in_any_range(RemoteIP, {dyn(v4)}), false))" if v4 else "")
    v6_test = 'RemoteIP contains ":"' + (
        f" and not(coalesce(ipv6_is_in_any_range(RemoteIP, {dyn(v6)}), false))" if v6 else "")
    return f"| where ({v4_test}) or ({v6_test})"


def group_columns(spec: Spec) -> str:
    return "Host, AccountDomain, AccountName, Image" + (", ProcessId, ProcessStart" if spec.per_process else "")


def aggregation(spec: Spec) -> list[str]:
    by = group_columns(spec)
    details = ("ip_list = make_set(RemoteIP), port_list = make_set(RemotePort), connection_count = count(), "
               "first_contact = min(Timestamp), last_contact = max(Timestamp)")
    if spec.sliding:
        lines = [
            "connections",
            f"| join kind=inner (connections | project {by}, Later = Timestamp, LaterIP = RemoteIP) on {by}",
            "| where Later between (Timestamp .. (Timestamp + window))",
            f"| summarize window_ips = array_length(make_set(LaterIP)) by {by}, Timestamp",
            f"| summarize unique_external_ips = max(window_ips) by {by}",
            f"| where unique_external_ips >= {spec.min_ips}",
            f"| join kind=inner (connections | summarize {details} by {by}) on {by}",
            f"| project {by}, unique_external_ips, ip_list, port_list, connection_count, first_contact, last_contact",
        ]
    else:
        lines = [
            "connections",
            f"| summarize unique_external_ips = array_length(make_set(RemoteIP)), {details} "
            f"by WindowStart = bin(Timestamp, window), {by}",
            f"| where unique_external_ips >= {spec.min_ips}",
        ]
    return [
        *lines,
        f"| extend strong_indicator = unique_external_ips >= {spec.strong_ips}, "
        "duration_mins = round((last_contact - first_contact) / 1m, 1), detection_type = \"multi_stage_c2\", "
        'technique = "T1104"',
        "| sort by unique_external_ips desc",
    ]


def render(spec: Spec) -> str:
    backends.require("kql")
    # Exact file names: Defender has the file name in its own column, so one short `in~` list replaces the
    # backend's two endswith tests per name (Sentinel rules must stay under 10,000 characters).
    query = backends.convert(_backend(), backends.filter_rule(
        spec, drop=("filter_image_names", "filter_image_bare_names")), allow_empty=True)
    table, _, where = (query or "DeviceNetworkEvents").partition("\n")
    header = comment_block([
        *summary_lines(spec, window_semantics(spec)),
        "Data: Defender for Endpoint DeviceNetworkEvents (Defender XDR advanced hunting, or Sentinel with the "
        "Defender XDR connector); process identity is InitiatingProcessId + InitiatingProcessCreationTime.",
    ], "//")
    process = ", ProcessId = InitiatingProcessId, ProcessStart = InitiatingProcessCreationTime"
    body = [
        f"let window = {spec.window_text};",
        "let connections =",
        table,
        f"| where ActionType !in ({INBOUND})  // outbound only: the pipeline drops Sigma's Initiated",
        UNWRAP,
        scope_clause(spec),
        *([where] if where else []),
        *([f"| where not(InitiatingProcessFileName in~ ({', '.join(_kql_string(n) for n in spec.images.names)}))"]
          if spec.images.names else []),
        # Grouping ignores case, as hunt's does.
        "| project Timestamp, RemoteIP, RemotePort, Host = tolower(DeviceName), "
        "AccountDomain = tolower(InitiatingProcessAccountDomain), AccountName = tolower(InitiatingProcessAccountName), "
        f"Image = tolower(InitiatingProcessFolderPath){process if spec.per_process else ''};",
        *aggregation(spec),
    ]
    return header + "\n".join(body) + "\n"
