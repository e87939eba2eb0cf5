"""Elastic ES|QL over Winlogbeat / Elastic Agent Sysmon data (ECS), via pySigma's ES|QL backend.

Repairs of the backend and its ecs_windows pipeline (each one would make the rule match nothing):
  - `Computer` becomes `winlog.event_data.Computer`; the logging host is `winlog.computer_name`;
  - `Image` becomes `process.executable.caseless`, a multi-field that stock Winlogbeat templates lack,
    and mixed-case values (`MicrosoftEdge.exe`) never equal a lower-cased keyword: stagehunt compares
    `to_lower(process.executable)` with lower-cased values instead (Sigma matching ignores case);
  - `User` (DOMAIN\\name) is compared with `user.name` alone, which holds only the name: split into
    `user.domain` and `user.name`;
  - regexes keep their `(?i)` flag, which Lucene (RLIKE) rejects: lower-cased and flag-free instead;
  - `Initiated` must be the YAML boolean (the rule's) for the pipeline to emit `network.direction == "egress"`.
The destination scope and the correlation are stagehunt's (see splunk.py for why).
"""

from __future__ import annotations

from typing import Any

from stagehunt.export import backends
from stagehunt.export.model import Spec, comment_block, lucene_regex, summary_lines

INDEX = "logs-windows.sysmon_operational-*, winlogbeat-*"
IP = "destination.ip"


def duration(secs: int) -> str:
    for unit, n in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if secs % n == 0:
            return f"{secs // n} {unit}"
    return f"{secs} seconds"


def window_semantics(spec: Spec) -> str:
    w = spec.window_text
    if spec.sliding:
        return ("sliding, by schedule. ES|QL has no window functions, so the query has no window: run it as "
                f"an Elastic Security ES|QL rule whose run interval plus additional look-back is {w} (e.g. every "
                f"1h, look-back {w} minus 1h). Each run then counts one {w} window ending at run time, so the window "
                "slides in steps of the interval. COUNT_DISTINCT is approximate beyond 3,000 distinct addresses "
                "per group.")
    return (f"fixed buckets (tumbling): DATE_TRUNC({duration(spec.window)}, @timestamp), aligned to the epoch "
            "in UTC, as pySigma's ES|QL correlation emits; two stages either side of a bucket edge are missed.")


def _backend() -> Any:
    from sigma.backends.elasticsearch import ESQLBackend
    from sigma.conditions import ConditionOR
    from sigma.pipelines.elasticsearch.windows import ecs_windows
    from sigma.processing.conditions import IncludeFieldCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import CaseTransformation, FieldMappingTransformation
    from sigma.processing.transformations.base import DetectionItemTransformation
    from sigma.rule import SigmaDetection, SigmaDetectionItem
    from sigma.types import SigmaString

    class SplitUser(DetectionItemTransformation):
        """DOMAIN\\name -> user.domain == DOMAIN and user.name == name (ECS splits the Sysmon User)."""

        def apply_detection_item(self, detection_item: Any) -> Any:
            alternatives = []
            for value in detection_item.value:
                domain, sep, name = value.to_plain().partition("\\")
                items = [SigmaDetectionItem("user.name", [], [SigmaString(name if sep else domain)])]
                if sep:
                    items.insert(0, SigmaDetectionItem("user.domain", [], [SigmaString(domain)]))
                alternatives.append(SigmaDetection(items))
            return SigmaDetection(alternatives, item_linking=ConditionOR)

    repairs = ProcessingPipeline(name="stagehunt ECS repairs", priority=10, items=[
        ProcessingItem(FieldMappingTransformation({"Computer": "winlog.computer_name", "Image": "process.executable"}),
                       identifier="stagehunt_ecs_fields"),
        ProcessingItem(SplitUser(), identifier="stagehunt_ecs_user",
                       field_name_conditions=[IncludeFieldCondition(fields=["User"])]),
    ])
    lower = ProcessingPipeline(name="stagehunt lower-case values", priority=90, items=[
        ProcessingItem(CaseTransformation(method="lower"), identifier="stagehunt_ecs_lower",
                       field_name_conditions=[IncludeFieldCondition(fields=[
                           "process.executable", "winlog.computer_name", "user.domain", "user.name"])]),
    ])

    class CaselessESQL(ESQLBackend):
        # Sigma string matching ignores case; ES|QL's does not.
        eq_expression = "to_lower({field})=={value}"
        startswith_expression = "starts_with(to_lower({field}), {value})"
        endswith_expression = "ends_with(to_lower({field}), {value})"
        wildcard_match_expression = "to_lower({field}) like {value}"
        convert_or_as_in = False  # an IN list would need to_lower() on numbers (ports) too

        def convert_condition_field_eq_val_re(self, cond: Any, state: Any) -> Any:
            regex = lucene_regex(cond.value.regexp.to_plain().lower())
            literal = regex.replace("\\", "\\\\").replace('"', '\\"')
            return f'to_lower({self.escape_and_quote_field(cond.field)}) rlike "{literal}"'

    return CaselessESQL(repairs + ecs_windows() + lower)


def scope_clause(spec: Spec) -> str:
    def any_of(nets: tuple) -> str:
        return f"cidr_match({IP}, " + ", ".join(f'"{n}"' for n in nets) + ")"

    is_v4 = f'cidr_match({IP}, "0.0.0.0/0")'
    v4, v6 = spec.scope.ipv4_gaps(), spec.scope.ipv6_gaps()
    # Elasticsearch stores ::ffff:a.b.c.d as the IPv4 address, so mapped addresses are tested as IPv4.
    return (f"| WHERE ({is_v4}" + (f" AND NOT {any_of(v4)}" if v4 else "") + f") OR (NOT {is_v4}"
            + (f" AND NOT {any_of(v6)}" if v6 else "") + ")")


def aggregation(spec: Spec) -> list[str]:
    by = "host, user_domain, user_name, image" + (", process.entity_id" if spec.per_process else "")
    lines = ["| EVAL host = to_lower(winlog.computer_name), user_domain = to_lower(user.domain), "
             "user_name = to_lower(user.name), image = to_lower(process.executable)"]
    if not spec.sliding:
        lines.append(f"| EVAL bucket = DATE_TRUNC({duration(spec.window)}, @timestamp)")
        by = "bucket, " + by
    lines += [
        f"| STATS unique_external_ips = COUNT_DISTINCT({IP}), ip_list = VALUES({IP}), "
        "port_list = VALUES(destination.port), connection_count = COUNT(*), first_contact = MIN(@timestamp), "
        f"last_contact = MAX(@timestamp) BY {by}",
        f"| WHERE unique_external_ips >= {spec.min_ips}",
        f"| EVAL strong_indicator = unique_external_ips >= {spec.strong_ips}, "
        'duration_mins = ROUND(DATE_DIFF("seconds", first_contact, last_contact) / 60.0, 1), '
        'detection_type = "multi_stage_c2", technique = "T1104"',
        "| SORT unique_external_ips DESC",
    ]
    return lines


def render(spec: Spec) -> str:
    backends.require("esql")
    query = backends.convert(_backend(), backends.filter_rule(spec))
    where = query.split("| where ", 1)[1]  # drop the backend's `from * metadata ...`
    header = comment_block([
        *summary_lines(spec, window_semantics(spec)),
        f"Adjust FROM to the indices holding Sysmon events ({INDEX} are the Elastic Agent and Winlogbeat defaults).",
    ], "//")
    body = [
        f"FROM {INDEX} METADATA _id, _index",
        '| WHERE winlog.channel == "Microsoft-Windows-Sysmon/Operational" AND event.code == "3"',
        scope_clause(spec),
        f"| WHERE {where}",
        *aggregation(spec),
    ]
    return header + "\n".join(body) + "\n"
