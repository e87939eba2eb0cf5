"""Command line: a thin layer over the Python API. Exit codes: 0 ok, 1 internal error, 2 usage or input."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stagehunt import __version__, escape, sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.inspect import file_reports
from stagehunt.store import EventStore

app = typer.Typer(
    name="stagehunt",
    help="Find multi-stage command-and-control channels (MITRE ATT&CK T1104) in endpoint telemetry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)

FORMAT_CHOICES = ", ".join(sources.FORMAT_HELP)
FormatOpt = Annotated[str, typer.Option("--format", "-f", help=f"Input format: {FORMAT_CHOICES}.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit with code 2 if any record could not be parsed.")]
PathsArg = Annotated[list[str], typer.Argument(
    help="Files, directories (read recursively), globs, .gz/.zip archives, or - for standard input.",
    show_default=False)]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(Text("stagehunt: error: " + escape.terminal(message)))
    raise typer.Exit(code)


def guarded(fn: Callable[[], int | None]) -> None:
    """Run a command body: user errors become one line and code 2, our bugs one line and code 1."""
    try:
        code = fn()
    except typer.Exit:
        raise
    except sources.InputError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as e:  # an internal error: one line unless debugging
        if os.environ.get("STAGEHUNT_DEBUG"):
            raise
        fail(f"internal error: {type(e).__name__}: {e} (set STAGEHUNT_DEBUG=1 for a traceback)", 1)
    raise typer.Exit(code or 0)


def load_inputs(store: EventStore, paths: list[str], fmt: str, diag: Diagnostics) -> None:
    """Expand and load the inputs, with a progress bar on standard error when it is a terminal."""
    if fmt != "auto" and fmt not in sources.READERS:
        fail(f"unknown --format {fmt!r}; choose one of: {FORMAT_CHOICES}")
    inputs = list(sources.expand(paths, store.tmpdir))
    if not inputs:
        fail("no input files found in: " + " ".join(paths))
    if sys.stderr.isatty() and len(inputs) > 0:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        total = sum(i.path.stat().st_size for i in inputs)
        with Progress(TextColumn("reading {task.description}"), BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task("", total=total)
            done = {"n": 0}

            def on_file(inp: sources.Input) -> None:
                bar.update(task, completed=done["n"], description=escape.terminal(Path(inp.name).name)[:40])
                done["n"] += inp.path.stat().st_size

            sources.load(store, inputs, fmt, diag, on_file)
    else:
        sources.load(store, inputs, fmt, diag)


def report_problems(diag: Diagnostics, strict: bool) -> None:
    """Print the first few parse problems and a count to standard error; --strict makes them fatal."""
    if not diag.total:
        return
    for p in diag.problems[:10]:
        err.print(Text("warning: " + escape.terminal(str(p))))
    err.print(Text(f"{diag.total} record(s) or file(s) could not be read; "
                   f"the rest was used ({'--strict: failing' if strict else 'use --strict to fail on this'})"))
    if strict:
        raise typer.Exit(2)


@app.command()
def inspect(
    paths: PathsArg,
    fmt: FormatOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Write a JSON document for tools instead of a table.")] = False,
    strict: StrictOpt = False,
) -> None:
    """Show per file: detected format, event counts by event id, time span, hosts and parse errors."""

    def run() -> int:
        diag = Diagnostics()
        with EventStore() as store:
            load_inputs(store, paths, fmt, diag)
            reports = file_reports(store, diag)
        if as_json:
            sys.stdout.buffer.write(orjson.dumps({"files": [r.to_dict() for r in reports]},
                                                 option=orjson.OPT_INDENT_2) + b"\n")
        else:
            out = Console(highlight=False)
            table = Table(title="stagehunt inspect", show_lines=False)
            for col in ("file", "format", "events", "by event id", "first (UTC)", "last (UTC)", "hosts", "errors"):
                table.add_column(col, overflow="fold")
            for r in reports:
                ids = "; ".join(f"{prov} " + ", ".join(f"{k}:{v}" for k, v in sorted(c.items(), key=lambda x: int(x[0])
                                                                                      if x[0].isdigit() else 0))
                                for prov, c in r.by_event_id.items())
                table.add_row(*(Text(escape.terminal(v)) for v in (
                    r.file, r.format, str(r.events), ids, r.first_event or "-", r.last_event or "-",
                    ", ".join(r.hosts[:5]) + (f" (+{len(r.hosts) - 5})" if len(r.hosts) > 5 else ""),
                    str(r.error_count))))
            out.print(table)
        report_problems(diag, strict)
        return 0

    guarded(run)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
