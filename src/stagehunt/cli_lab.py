"""The lab commands: `simulate` writes the test scenarios' telemetry, `validate` proves the detections on it.

Registered on the app in cli.py. The helpers they share with the other commands (`fail`, `guarded`,
`err`) are imported when a command runs, so cli.py can import this module without a cycle.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stagehunt.simulate.lab import FORMATS
from stagehunt.simulate.scenarios import DEFAULT_C2, SCENARIO_NAMES

if TYPE_CHECKING:
    from stagehunt.validate import Report

ScenarioOpt = Annotated[list[str] | None, typer.Option(
    "--scenario", "-s", metavar="NAME",
    help="Only this scenario; repeat for more (default: all): " + ", ".join(SCENARIO_NAMES) + ".",
    show_default=False)]
LabFormatOpt = Annotated[list[str] | None, typer.Option(
    "--format", "-f", metavar="FORMAT",
    help="Only this log format; repeat for more (default: each that exists for the scenario's "
    "platform): flat, ecs, sumo-cse (Windows and Linux), xml (Windows), syslog and auditd (Linux).",
    show_default=False)]
C2Opt = Annotated[str | None, typer.Option(
    "--c2", metavar="A,B", help="Your own canary hosts instead of the attack scenarios' C2 addresses "
    f"(default {','.join(DEFAULT_C2)}): A is each first stage, B each second stage. Private addresses are "
    "counted only with count_internal (hunt --count-internal; validate turns it on by itself).",
    show_default=False)]


def _choices(values: list[str] | None, known: tuple[str, ...], what: str) -> list[str] | None:
    from stagehunt.cli import fail

    for v in values or []:
        if v not in known:
            fail(f"unknown {what} {v!r}; choose from: {', '.join(known)}")
    return values or None


def _c2(text: str | None) -> tuple[str, str]:
    from stagehunt.cli import fail
    from stagehunt.simulate.scenarios import C2Error, parse_c2

    if text is None:
        return DEFAULT_C2
    try:
        return parse_c2(text)
    except C2Error as e:
        fail(str(e))


def simulate(
    out_dir: Annotated[Path, typer.Option("--out", "-o", metavar="DIR",
                                          help="Folder to write into: DIR/<scenario>/<format>.<ext> "
                                          "and DIR/<scenario>/expected.json (created; files are overwritten).",
                                          file_okay=False, show_default=False)],
    scenario: ScenarioOpt = None,
    fmt: LabFormatOpt = None,
    c2: C2Opt = None,
) -> None:
    # the help text is SIMULATE_HELP, set below: Typer prints docstring lines as they are wrapped here
    from stagehunt.cli import err, fail, guarded

    def run() -> int:
        from rich.text import Text

        from stagehunt import escape
        from stagehunt.config import ScopeConfig
        from stagehunt.simulate.lab import write_scenario
        from stagehunt.simulate.scenarios import build_all, needs_count_internal

        names = _choices(scenario, SCENARIO_NAMES, "--scenario")
        formats = _choices(fmt, tuple(FORMATS), "--format")
        addresses = _c2(c2)
        if out_dir.exists() and not out_dir.is_dir():
            fail(f"{out_dir}: exists and is not a folder")
        written, folders = 0, 0
        for sc in build_all(names, addresses):
            files = write_scenario(out_dir, sc, formats)
            written += len(files)
            folders += bool(files)
        if not written:
            fail("no requested format exists for the requested scenarios (xml is Windows only; syslog and "
                 "auditd are Linux only)")
        err.print(Text(f"wrote {written} file(s) for {folders} scenario(s) to {escape.terminal(out_dir)}"))
        if needs_count_internal(addresses, ScopeConfig()):
            err.print(Text("note: some --c2 addresses are internal: hunt with --count-internal to count them"))
        return 0

    guarded(run)


def validate(
    fmt: LabFormatOpt = None,
    scenario: ScenarioOpt = None,
    c2: C2Opt = None,
    config_file: Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE",
                                                     help="TOML configuration to validate "
                                                     "(see `stagehunt config show`); default: the shipped one.")
                           ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Write a JSON report for tools instead of a table.")
                       ] = False,
    keep: Annotated[Path | None, typer.Option("--keep", metavar="DIR",
                                              help="Write the simulated files into this folder and keep "
                                              "them (default: a temporary folder, removed).", file_okay=False)
                    ] = None,
) -> None:
    # the help text is VALIDATE_HELP, set below
    from stagehunt.cli import fail, guarded

    def run() -> int:
        import orjson

        from stagehunt.config import ConfigError, load_config
        from stagehunt.validate import validate as run_validation

        names = _choices(scenario, SCENARIO_NAMES, "--scenario")
        formats = _choices(fmt, tuple(FORMATS), "--format")
        addresses = _c2(c2)
        try:
            cfg = load_config(config_file)
        except ConfigError as e:
            fail(str(e))
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        if sys.stderr.isatty():  # ~12 s for all scenarios: show which one is being proved
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            from stagehunt.cli import err

            with Progress(TextColumn("validating {task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("", total=None)

                def shown(done: int, total: int, name: str) -> None:
                    bar.update(task, completed=done, total=total, description=name)

                report = run_validation(cfg, formats, addresses, names, keep, shown)
        else:
            report = run_validation(cfg, formats, addresses, names, keep)
        if not report.cells:
            fail("no requested format exists for the requested scenarios")
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        else:
            print_report(report)
        return 0 if report.ok else 1

    guarded(run)


# One line per paragraph: Typer keeps a docstring's line breaks, so wrapped source lines would print wrapped.
simulate.__doc__ = "\n\n".join((
    "Write the telemetry of the seed's test scenarios and false positives, and of the ranking scenarios, with "
    "the expected outcome.",
    "Each scenario goes to DIR/<scenario>/<format>.<ext> in every requested format that exists for its "
    "platform, with DIR/<scenario>/expected.json: what it simulates and which detections must fire, naming "
    "which processes (or \"no finding\" for a false-positive scenario), and for the ranking scenarios what a "
    "mechanism must hide, the highest severity allowed and which findings must outrank which.",
    "Deterministic (same arguments, same bytes) and offline: it only writes files, it never opens a connection.",
    "Hunt one format at a time, e.g. stagehunt hunt 'DIR/*/flat.jsonl': every scenario folder holds the same "
    "events in each format.",
))
validate.__doc__ = "\n\n".join((
    "Prove the detections: simulate every scenario in every format, hunt each file, compare with the expected.",
    "Each file is hunted with the real stagehunt.hunt (format sniffed) under your --config, and judged: PASS, "
    "MISS (an expected finding is missing), FALSE-POSITIVE (a benign process was flagged) or READ-ERROR (the "
    "file was not read as its format, or not completely). Prints a coverage table (scenario x format: "
    "expected, found, verdict), or --json.",
    "Exit code 0 when every check passes, 1 otherwise, 2 on a usage or configuration error.",
))


def print_report(report: Report) -> None:
    """The coverage table, then why each failing check failed, then a one-line summary."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from stagehunt.escape import terminal
    from stagehunt.sinks.table import OutputConsole

    # a pipe or file has no width: use one the rows fit in rather than Rich's 80 columns
    out = OutputConsole(highlight=False, width=None if sys.stdout.isatty() else 150)
    table = Table(title="stagehunt validate", box=box.SIMPLE_HEAD, show_lines=False)
    for col, opts in (("scenario", {"no_wrap": True}), ("format", {"no_wrap": True}), ("expected", {}),
                      ("found", {}), ("verdict", {"no_wrap": True})):
        table.add_column(col, **opts)
    previous = None
    for cell in report.cells:
        first = cell.scenario != previous
        if first and previous is not None:
            table.add_section()
        previous = cell.scenario
        expected = "\n".join(cell.expected) or "no finding"
        # what a mechanism hid is part of the outcome: "hidden (infrastructure): multi_stage_c2 aria2c.exe ..."
        found = "\n".join([*cell.found, *cell.hidden]) or "-"
        style = "green" if cell.verdict == "PASS" else "bold red"
        # scenario names and expectations are ours; `found` holds image names from the logs
        table.add_row(Text(cell.scenario if first else ""), Text(cell.format),
                      Text(expected if first else ""), Text(terminal(found)), Text(cell.verdict, style=style))
    out.print(table)
    for cell in report.cells:
        for problem in cell.problems:
            out.print(Text(f"{cell.verdict}: {cell.scenario} / {cell.format}: {terminal(problem)}"))
    for note in report.notes:
        out.print(Text("note: " + terminal(note)))
    counts = report.counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n or v == "PASS")
    out.print(Text(f"{len(report.cells)} checks: {summary}", style="green" if report.ok else "bold red"))
