"""Sumo Logic Cloud SIEM rules: an Aggregation rule as a REST body (`sumo-rule`) and as Terraform
(`sumo-terraform`, resource `sumologic_cse_aggregation_rule`).

Cloud SIEM rules see one record at a time, so what the search joins from process-start records (command
line, parent, hashes) is out of reach here: exclusions use the network record's own image, user and host.
The network record keeps ProcessGuid only in `fields`, which a rule cannot group by, so one process is
approximated by host + pid + image. Cloud SIEM evaluates such rules over overlapping windows, i.e. sliding.

The parent/child handoff is deliberately not emitted as a Chain rule: a Chain rule groups all its
expressions by the same fields, but the handoff needs the child's parentPid to equal the parent's pid
(two different fields) and the child's addresses to differ from the parent's (an inequality). Any
Chain rule expressible here would fire on every host that both starts processes and connects out.
"""

from __future__ import annotations

import json

from stagehunt.export.model import TECHNIQUE, Spec, comment_block, summary_lines, wrap
from stagehunt.export.sumo import EVENT_IDS, image_regex, ipv6_any_regex, v4_ranges

RULE_NAME = "stagehunt: multi-stage C2 (T1104): one process reaches several counted destinations"
TAGS = ["_mitreAttackTactic:TA0011", f"_mitreAttackTechnique:{TECHNIQUE}"]
SEVERITY = 7  # the seed's "high"; Cloud SIEM severities run 1-10
_WINDOWS = {300: "T05M", 600: "T10M", 1800: "T30M", 3600: "T60M", 43200: "T12H", 86400: "T24H", 432000: "T05D"}
NO_CHAIN = ("No Chain rule for the parent/child handoff: Chain rules group every expression by the same fields, "
            "and the handoff needs the child's parentPid to equal the parent's pid (two fields) and the child's "
            "addresses to differ from the parent's (an inequality). Use `stagehunt hunt` for it.")


class ExportError(ValueError):
    """The configuration asks for something the target cannot express."""


def window_fields(spec: Spec) -> dict[str, object]:
    if spec.window in _WINDOWS:
        return {"windowSize": _WINDOWS[spec.window]}
    if not 60 <= spec.window <= 432000:
        raise ExportError(f"Cloud SIEM rule windows run from 1 minute to 5 days; [detection] window is "
                          f"{spec.window_text}")
    return {"windowSize": "CUSTOM", "windowSizeMillis": str(spec.window * 1000)}


def _quote(text: str) -> str:
    # Cloud SIEM string literals keep backslashes as typed; only the quote needs escaping.
    return '"' + text.replace('"', '\\"') + '"'


def _ipv4_in(expr: str, ranges: list[tuple[int, int]]) -> str:
    return "(" + " or ".join(f"ipv4ToNumber({expr}) between {lo} and {hi}" for lo, hi in ranges) + ")"


def match_expression(spec: Spec) -> str:
    ip = "dstDevice_ip"
    mapped = f"toLowerCase({ip}) rlike {_quote('^::ffff:[0-9]{1,3}([.][0-9]{1,3}){3}$')}"
    unwrapped = f"substring({ip}, 7)"
    counted = spec.scope.ipv4_ranges()
    parts = [
        "(" + " or ".join(f"metadata_deviceEventId = {_quote(i)}" for i in EVENT_IDS["conn"]) + ")",
        "toLowerCase(fields['EventData.Initiated']) = \"true\"",
    ]
    scope = [f"(isValidIPv4({ip}) and {_ipv4_in(ip, counted)})",
             f"({mapped} and {_ipv4_in(unwrapped, counted)})"]
    gaps = ipv6_any_regex(spec.scope.ipv6_gaps())
    scope.append(f"(isValidIPv6({ip}) and not {mapped}"
                 + (f" and not (toLowerCase({ip}) rlike {_quote(gaps)})" if gaps else "") + ")")
    parts.append("(" + " or ".join(scope) + ")")
    if spec.excluded_v4:
        excluded = v4_ranges(spec.excluded_v4)
        parts.append(f"not ((isValidIPv4({ip}) and {_ipv4_in(ip, excluded)}) or "
                     f"({mapped} and {_ipv4_in(unwrapped, excluded)}))")
    if spec.excluded_v6:
        parts.append(f"not (isValidIPv6({ip}) and toLowerCase({ip}) rlike {_quote(ipv6_any_regex(spec.excluded_v6))})")
    if spec.ports:
        parts.append("not (" + " or ".join(f"dstPort = {p}" for p in spec.ports) + ")")
    if spec.images:
        parts.append(f"not (toLowerCase(baseImage) rlike {_quote(image_regex(spec))})")
    if spec.users:
        parts.append("not (" + " or ".join(f"toLowerCase(user_username) = {_quote(u.lower())}" for u in spec.users)
                     + ")")
    if spec.hosts:
        parts.append("not (" + " or ".join(f"toLowerCase(srcDevice_hostname) = {_quote(h.lower())}"
                                           for h in spec.hosts) + ")")
    return "\n  and ".join(parts)


def group_by(spec: Spec) -> list[str]:
    return ["pid", "baseImage"] if spec.per_process else ["user_username", "baseImage"]


def grouping(spec: Spec) -> str:
    if spec.per_process:
        return ("one process on a host (host + pid + image: network records keep the ProcessGuid only in "
                "`fields`, which rules cannot group by, so a pid reused by the same image within the window "
                "joins the two processes)")
    return "one group of host, user and image"


def summary(spec: Spec) -> list[str]:
    return [*summary_lines(spec, window_semantics(spec), grouping(spec)), NO_CHAIN]


def description(spec: Spec) -> str:
    lines = summary(spec)
    return " ".join(lines[2:-2] + lines[-1:])  # without the banner and the generic handoff note


def window_semantics(spec: Spec) -> str:
    text = (f"sliding: Cloud SIEM evaluates {spec.window_text} windows that overlap, so two stages "
            "close together are never split by a window edge.")
    if not spec.sliding:
        text += " The configured tumbling window_mode cannot be expressed in a rule; this one slides."
    if spec.hashes:
        text += " Hash exclusions need the process-start record and are not applied."
    return text


def rule_fields(spec: Spec) -> dict[str, object]:
    suppression = spec.window * 1000 + 3_600_000  # must exceed the window and stay under 7 days
    fields: dict[str, object] = {
        "name": RULE_NAME,
        "enabled": True,
        "isPrototype": False,
        "matchExpression": match_expression(spec),
        "aggregationFunctions": [{"name": "unique_external_ips", "function": "count_distinct",
                                  "arguments": ["dstDevice_ip"]}],
        "triggerExpression": f"unique_external_ips >= {spec.min_ips}",
        "groupByEntity": True,
        "groupByFields": group_by(spec),
        "entitySelectors": [{"entityType": "_hostname", "expression": "srcDevice_hostname"}],
        **window_fields(spec),
        "nameExpression": "Multi-stage C2 (T1104): {{baseImage}} reached several counted destinations",
        "descriptionExpression": description(spec),
        "summaryExpression": (f"{{{{baseImage}}}} on {{{{srcDevice_hostname}}}} reached at least {spec.min_ips} "
                              f"distinct counted destination addresses within {spec.window_text}"),
        "severityMapping": {"type": "constant", "default": SEVERITY},
        "tags": TAGS,
    }
    if suppression < 7 * 86_400_000:
        fields["suppressionWindowSize"] = suppression
    return fields


def render_rest(spec: Spec) -> str:
    doc = {
        "_comment": [w for line in summary(spec) for w in wrap(line)],
        "method": "POST",
        "path": "/api/sec/v1/rules/aggregation",
        "body": {"fields": rule_fields(spec)},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# ---- Terraform --------------------------------------------------------------------------------------------

_SNAKE = {"isPrototype": "is_prototype", "matchExpression": "match_expression",
          "triggerExpression": "trigger_expression", "groupByEntity": "group_by_entity",
          "groupByFields": "group_by_fields", "windowSize": "window_size", "windowSizeMillis": "window_size_millis",
          "nameExpression": "name_expression", "descriptionExpression": "description_expression",
          "summaryExpression": "summary_expression", "suppressionWindowSize": "suppression_window_size"}


def _hcl(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    # JSON string escapes are HCL's; `${` and `%{` would start a template.
    return json.dumps(str(value), ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def render_terraform(spec: Spec) -> str:
    f = rule_fields(spec)
    lines = ['resource "sumologic_cse_aggregation_rule" "stagehunt_t1104_multi_stage_c2" {']
    for key in ("name", "enabled", "isPrototype", "matchExpression", "triggerExpression", "groupByEntity",
                "groupByFields", "windowSize", "windowSizeMillis", "suppressionWindowSize", "nameExpression",
                "descriptionExpression", "summaryExpression", "tags"):
        if key in f:
            lines.append(f"  {_SNAKE.get(key, key)} = {_hcl(f[key])}")
    for agg in f["aggregationFunctions"]:  # type: ignore[union-attr]
        lines += ["  aggregation_functions {", f"    name = {_hcl(agg['name'])}",
                  f"    function = {_hcl(agg['function'])}", f"    arguments = {_hcl(agg['arguments'])}", "  }"]
    for sel in f["entitySelectors"]:  # type: ignore[union-attr]
        lines += ["  entity_selectors {", f"    entity_type = {_hcl(sel['entityType'])}",
                  f"    expression = {_hcl(sel['expression'])}", "  }"]
    sev = f["severityMapping"]
    lines += ["  severity_mapping {", f"    type = {_hcl(sev['type'])}", f"    default = {_hcl(sev['default'])}",  # type: ignore[index]
              "  }", "}"]
    header = comment_block(summary(spec), "#")
    return header + "\n".join(lines) + "\n"
