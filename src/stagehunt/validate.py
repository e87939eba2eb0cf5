"""Validation: simulate every scenario in every applicable format, hunt each file with the real
`stagehunt.hunt` (format sniffed, as a user would run it) and compare with what the scenario expects.

Verdicts, per scenario and format:
  PASS            every expected finding is there and nothing else fired on a benign process
  MISS            an expected finding is missing (the detection, or the reader, failed the scenario); for
                  the ranking scenarios also: a finding that should be hidden by a mechanism was not made
                  or was hidden by another, a group of findings is not there or lacks its reason, or a
                  group does not outrank the one it must
  FALSE-POSITIVE  a finding names a process outside the attack, or a benign scenario produced one; also a
                  finding shown that a mechanism should hide, or one ranked above the scenario's max_severity
  READ-ERROR      the file was read as another format, or some of its records could not be read
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stagehunt import api
from stagehunt.config import Config
from stagehunt.findings import Finding
from stagehunt.simulate.lab import FORMATS, applicable, write_scenario
from stagehunt.simulate.model import SEVERITIES, Expected, Group, Hidden, Outranks, Scenario
from stagehunt.simulate.scenarios import DEFAULT_C2, build_all, needs_count_internal

VERDICTS = ("PASS", "MISS", "FALSE-POSITIVE", "READ-ERROR")


def _name(path: str | None) -> str:
    return (path or "?").replace("\\", "/").rsplit("/", 1)[-1]


def describe_expected(e: Expected) -> str:
    extra = f", confidence {e.confidence}" if e.confidence else ""
    return f"{e.detection_type} {_name(e.image)} <- {_name(e.parent_image)}{extra}"


def describe_finding(f: Finding, scored: bool = False) -> str:
    """`type image <- parent (confidence)`, or with `scored` the score and its band instead of the confidence."""
    rank = f"score {f.score} {f.severity}" if scored else f.confidence
    return f"{f.detection_type} {_name(f.image)} <- {_name(f.parent_image)} ({rank})"


def describe_hidden(h: Hidden) -> str:
    return f"hidden by {h.mechanism}: {_name(h.image)}"


def describe_group(g: Group) -> str:
    return f"{g.count} x {_name(g.image)} to {', '.join(g.reaches)}"


def describe_rank(r: Outranks) -> str:
    return f"{describe_group(r.above)} outranks {describe_group(r.below)}"


def describe_all(scenario: Scenario) -> list[str]:
    """The scenario's expected outcome, one line per expectation (the table's `expected` column)."""
    lines = [describe_expected(e) for e in scenario.expected]
    lines += [describe_hidden(h) for h in scenario.hidden]
    lines += [describe_rank(r) for r in scenario.ranks]
    if scenario.max_severity:
        lines.append(f"every finding shown at most {scenario.max_severity}")
    return lines


def collapse(lines: list[str]) -> list[str]:
    """Identical lines once, with their count: a fleet's fifty findings are one line."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return [line if n == 1 else f"{line} (x{n})" for line, n in counts.items()]


@dataclass
class Cell:
    """One scenario hunted in one format."""

    scenario: str
    kind: str
    format: str
    file: str
    expected: list[str]  # empty: no finding
    found: list[str]
    verdict: str
    problems: list[str] = field(default_factory=list)  # why the verdict is not PASS
    hidden: list[str] = field(default_factory=list)  # hidden findings a `Hidden` expectation is about, by what

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    cells: list[Cell]
    c2: tuple[str, ...]
    count_internal: bool  # turned on because a C2 address is internal
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.verdict == "PASS" for c in self.cells)

    def counts(self) -> dict[str, int]:
        return {v: sum(c.verdict == v for c in self.cells) for v in VERDICTS}

    def to_dict(self) -> dict:
        return {"ok": self.ok, "c2": list(self.c2), "count_internal": self.count_internal, "notes": self.notes,
                "summary": self.counts(), "results": [c.to_dict() for c in self.cells]}


def judge(scenario: Scenario, findings: list[Finding], hidden: list[Finding]) -> tuple[str, list[str]]:
    """(verdict, problems) for what a hunt over the scenario returned."""
    problems = []
    misses = 0  # problems that make the verdict MISS; the rest make it FALSE-POSITIVE
    for e in scenario.expected:
        if not any(e.matches(f) for f in findings):
            near = [describe_finding(f) for f in findings + hidden if f.detection_type == e.detection_type]
            hid = [describe_finding(f) + f" suppressed: {'; '.join(f.suppressed_by) or 'score below min_score'}"
                   for f in hidden if e.matches(f)]
            why = f"; hidden: {', '.join(hid)}" if hid else (f"; same type found: {', '.join(near)}" if near else "")
            problems.append(f"missing {describe_expected(e)}" + (f" (reason containing {e.reason!r})"
                                                                 if e.reason else "") + why)
            misses += 1
    for h in scenario.hidden:
        # shown instead is a false positive (below); here: not made at all, or hidden by something else
        if not any(h.matches(f) for f in hidden) and not any(f.image == h.image for f in findings):
            other = ["; ".join(f.suppressed_by) or "score below min_score" for f in hidden if f.image == h.image]
            problems.append(f"missing {describe_hidden(h)}: " + (f"hidden by {', '.join(other)} instead" if other
                            else "no finding about it at all (excluded before ranking? then the mechanism "
                            "was never tested)"))
            misses += 1
    for r in scenario.ranks:
        misses += _check_rank(r, findings, problems)
    allowed = {*scenario.attack_images, *(e.image for e in scenario.expected),
               *(g.image for r in scenario.ranks for g in (r.above, r.below))}
    should_hide = {h.image: h.mechanism for h in scenario.hidden}
    wrong = [f for f in findings if f.image not in allowed or f.image in should_hide]
    for f in wrong:
        hint = f" (should be hidden by {should_hide[f.image]})" if f.image in should_hide else ""
        problems.append(f"false positive: {describe_finding(f)}{hint}")
    over = []
    if scenario.max_severity:
        ceiling = SEVERITIES.index(scenario.max_severity)
        over = [f for f in findings if f not in wrong and SEVERITIES.index(f.severity) > ceiling]
        problems += [f"false positive: {describe_finding(f, scored=True)}, above {scenario.max_severity}"
                     for f in over]
    if misses:
        return "MISS", problems
    return ("FALSE-POSITIVE", problems) if wrong or over else ("PASS", problems)


def _check_rank(r: Outranks, findings: list[Finding], problems: list[str]) -> int:
    """Append what is wrong with one ordering; return how many problems that was."""
    before = len(problems)
    groups = [(g, g.select(findings)) for g in (r.above, r.below)]
    for g, members in groups:
        if len(members) != g.count:
            problems.append(f"missing {describe_group(g)}: {len(members)} shown")
        lacking = [f for f in members if g.reason and not any(g.reason in x for x in f.reasons)]
        if lacking:
            problems.append(f"missing reason {g.reason!r} on {len(lacking)} of {describe_group(g)}, e.g. "
                            f"{describe_finding(lacking[0], scored=True)}")
    (_, above), (_, below) = groups
    if above and below and min(f.score or 0 for f in above) <= max(f.score or 0 for f in below):
        low = min(above, key=lambda f: f.score or 0)
        high = max(below, key=lambda f: f.score or 0)
        problems.append(f"missing rank: {describe_group(r.above)} must score above {describe_group(r.below)}, "
                        f"but {describe_finding(low, scored=True)} on {low.host} <= "
                        f"{describe_finding(high, scored=True)} on {high.host}")
    return len(problems) - before


def check(scenario: Scenario, fmt: str, path: Path, cfg: Config) -> Cell:
    """Hunt one simulated file (its format sniffed) and judge the result."""
    result = api.hunt_detailed([path], cfg)
    verdict, problems = judge(scenario, result.findings, result.hidden)
    read_as = {f.format for f in result.files}
    if read_as != {fmt}:
        problems.append(f"read as {', '.join(sorted(read_as)) or 'nothing'}, not {fmt}")
    for p in result.diagnostics.problems[:3]:
        problems.append(f"unreadable: {p}")
    if verdict == "PASS" and (result.diagnostics.total or read_as != {fmt}):
        verdict = "READ-ERROR"
    # the ranking scenarios show scores: the order and the bands are what they are about
    scored = bool(scenario.ranks or scenario.max_severity)
    about = {h.image for h in scenario.hidden}
    # suppressed_by entries start with the mechanism's name ("infrastructure: ..."), which is what matters here
    hidden = [f"hidden ({', '.join(s.split(':', 1)[0] for s in f.suppressed_by) or 'score below min_score'}): "
              f"{describe_finding(f, scored)}" for f in result.hidden if f.image in about]
    return Cell(scenario.name, scenario.kind, fmt, path.name, describe_all(scenario),
                collapse([describe_finding(f, scored) for f in result.findings]), verdict, problems, hidden)


def validate(config: Config | None = None, formats: Iterable[str] | None = None,
             c2: tuple[str, str] = DEFAULT_C2, scenarios: Iterable[str] | None = None,
             workdir: Path | None = None, on_scenario: Callable[[int, int, str], None] | None = None) -> Report:
    """Simulate, hunt and judge every scenario in every applicable format (in a temp dir unless
    `workdir` is given). Internal C2 addresses (a lab's private canaries) switch count_internal on.
    `on_scenario(done, total, name)` is told as each scenario starts (a progress display)."""
    cfg = config or Config()
    notes = []
    internal = needs_count_internal(c2, cfg.scope)
    if internal:
        cfg = cfg.with_overrides(scope={"count_internal": True})
        notes.append(f"C2 addresses {', '.join(c2)} include internal ones: hunted with count_internal = true")
    # The files are tiny: one DuckDB thread per hunt avoids starting a thread pool for each. (Hunting
    # in parallel processes gained nothing measurable on two cores: 9.5 s instead of 10 s for all 42.)
    cfg = cfg.with_overrides(engine={"threads": 1})
    wanted = list(formats) if formats else list(FORMATS)
    chosen = build_all(scenarios, c2)
    with tempfile.TemporaryDirectory(prefix="stagehunt-validate-") as tmp:
        root = workdir or Path(tmp)
        cells = []
        for k, sc in enumerate(chosen):
            if on_scenario is not None:
                on_scenario(k, len(chosen), sc.name)
            write_scenario(root, sc, wanted, cfg.scope)
            cells += [check(sc, f.name, root / sc.name / f.file_name, cfg) for f in applicable(sc, wanted)]
    return Report(cells, c2, internal, notes)
