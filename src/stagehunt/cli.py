"""Command line: a thin layer over the Python API. Exit codes: 0 ok, 1 internal error, 2 usage or input."""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import duckdb
import orjson
import typer
from rich.console import Console
from rich.text import Text

from stagehunt import __version__, escape, sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.inspect import file_reports
from stagehunt.inspect import render as render_reports
from stagehunt.progress import FileProgress
from stagehunt.store import EventStore


def _no_python_types_in_help() -> None:
    """typer 0.29 prints a Python type beside every parameter in --help (`--json <bool>`,
    `PATH <list[str]>`): a flag takes no value, and our metavars already name what a value is. Where
    that hook exists, a flag shows no type and an argument only its metavar (in the name column)."""
    core = typer.core
    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if option is None or argument is None or not hasattr(option, "display_type_rich"):
        return  # older typer: flags already show nothing
    option_shown, argument_shown = option.display_type_rich, argument.display_type_rich

    def option_type(self, ctx):
        return None if self.is_flag or self.count else option_shown(self, ctx)

    def argument_type(self, ctx):
        return None if self.metavar is not None else argument_shown(self, ctx)

    option.display_type_rich = option_type
    argument.display_type_rich = argument_type


_no_python_types_in_help()

app = typer.Typer(
    name="stagehunt",
    help="Find multi-stage command-and-control channels (MITRE ATT&CK T1104) in endpoint telemetry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line: no wrapping

FORMAT_CHOICES = ", ".join(sources.FORMAT_HELP)
FormatOpt = Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help=f"Input format: {FORMAT_CHOICES}.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit with code 2 if any record could not be parsed.")]
PathsArg = Annotated[list[str], typer.Argument(
    metavar="PATH", help="Files, directories (read recursively), globs, .gz/.zip archives, pipes, or - for standard "
    "input.",
    show_default=False)]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(Text("stagehunt: error: " + escape.terminal(message)))
    raise typer.Exit(code)


def guarded(fn: Callable[[], int | None]) -> None:
    """Run a command body: user errors become one line and code 2, our bugs one line and code 1."""
    try:
        code = fn()
        sys.stdout.flush()  # what is still buffered fails here, not at exit past this handler
    except typer.Exit:
        raise
    except sources.InputError as e:
        fail(str(e))
    except (KeyboardInterrupt, duckdb.InterruptException):
        fail("interrupted", 130)
    except duckdb.OutOfMemoryException as e:  # the configured limit is too small for this input
        first = str(e).splitlines()[0].removeprefix("Out of Memory Error: ")
        fail(f"out of memory: {first}; raise memory_limit in the [engine] section of the --config file")
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        _drop_stdout()
        raise typer.Exit(0) from None
    except OSError as e:  # the machine's, not ours: a full disk, a vanished or read-only folder
        _drop_stdout()
        if e.errno in _WRITE_ERRORS:
            fail(f"cannot write {e.filename or 'the output'}: {e.strerror}")
        fail(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
    except RuntimeError as e:
        # Ctrl-C inside a DuckDB statement: its Python client raises a bare RuntimeError, not the above
        if str(e) == "Query interrupted":
            fail("interrupted", 130)
        internal(e)
    except Exception as e:
        internal(e)
    raise typer.Exit(code or 0)


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}  # only writing meets these


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush of what is still buffered does
    not fail again on the way out (and print "Exception ignored")."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def internal(e: Exception) -> NoReturn:
    """Our bug: one line unless debugging."""
    if os.environ.get("STAGEHUNT_DEBUG"):
        raise e
    fail(f"internal error: {type(e).__name__}: {e} (set STAGEHUNT_DEBUG=1 for a traceback)", 1)


@contextmanager
def stages() -> Iterator[Callable[[str], None] | None]:
    """On a terminal, a spinner on standard error naming the stage after the read (the process tree, each
    detection, scoring), which would otherwise pass in silence; elsewhere nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    status = err.status("", spinner="dots")
    started = False

    def show(stage: str) -> None:
        nonlocal started
        status.update(f"hunting: {stage}")
        if not started:
            status.start()
            started = True

    try:
        yield show
    finally:
        status.stop()


def writable(out_file: Path | None) -> None:
    """Fail now, before any work, when `-o FILE` cannot be written: a missing folder, no permission."""
    if out_file is None:
        return
    folder = out_file.parent  # "." for a bare file name
    if not folder.is_dir():
        fail(f"cannot write {out_file}: folder {folder} does not exist")
    if not os.access(out_file if out_file.exists() else folder, os.W_OK):
        fail(f"cannot write {out_file}: permission denied")


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
            before = [0]  # bytes of the files already read
            current: list[FileProgress] = []  # the one being read

            def on_file(inp: sources.Input) -> None:
                if current:
                    before[0] += current[0].size
                current[:] = [FileProgress(inp.path, inp.path.stat().st_size)]
                bar.update(task, completed=before[0], description=escape.terminal(Path(inp.name).name)[:40])

            # within a file, how far its reader has come (one big file would otherwise sit at 0 % until it
            # is done): DuckDB's progress through its statement, or the offset the reader has read to
            store.con.execute("SET enable_progress_bar = true")
            store.con.execute("SET enable_progress_bar_print = false")
            stop = threading.Event()

            def poll() -> None:
                while not stop.wait(0.25):
                    if current:
                        file = current[0]
                        bar.update(task, completed=before[0] + file.size * file.update(store.con.query_progress()))

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            try:
                sources.load(store, inputs, fmt, diag, on_file)
            finally:
                stop.set()
                poller.join()
                store.con.execute("SET enable_progress_bar = false")
    else:
        sources.load(store, inputs, fmt, diag)


def report_problems(diag: Diagnostics, strict: bool, events_read: int) -> None:
    """Print the first few parse problems and a count to standard error. Exit 2 with --strict, or when
    nothing at all could be read (every input unrecognised or unreadable)."""
    if not diag.total:
        return
    for p in diag.problems[:10]:
        err.print(Text("warning: " + escape.terminal(str(p))))
    fatal = strict or events_read == 0
    why = "--strict: failing" if strict else "nothing could be read" if fatal else "use --strict to fail on this"
    err.print(Text(f"{diag.total} problem(s) in records or files; everything readable was used ({why})"))
    if fatal:
        raise typer.Exit(2)


@app.command()
def inspect(
    paths: PathsArg,
    fmt: FormatOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Write a JSON document for tools instead of a table.")
                       ] = False,
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
            render_reports(reports)
        report_problems(diag, strict, sum(r.events for r in reports))
        return 0

    guarded(run)


OUTPUTS = ("table", "jsonl", "csv", "ocsf")


@app.command()
def hunt(
    paths: PathsArg,
    fmt: FormatOpt = "auto",
    output: Annotated[str, typer.Option("--output", "-O", metavar="OUTPUT", help="Output: table (default), jsonl, "
                                        "csv (formula-injection safe) or ocsf (Detection Finding, class 2004).")
                      ] = "table",
    out_file: Annotated[Path | None, typer.Option("-o", "--out", metavar="FILE",
                                                  help="Write findings to this file instead of "
                                                  "standard output.", dir_okay=False)] = None,
    config_file: Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE", help="TOML configuration file "
                                                     "(see `stagehunt config show`).")] = None,
    min_ips: Annotated[int | None, typer.Option(metavar="N", help="Distinct external IPs that make a finding "
                                                "(config detection.min_ips; default 2).")] = None,
    strong_ips: Annotated[int | None, typer.Option(metavar="N", help="Distinct IPs that make it a strong indicator "
                                                   "(config detection.strong_ips; default 3).")] = None,
    window: Annotated[str | None, typer.Option(metavar="DURATION", help="Time window, e.g. 30m, 24h, 7d "
                                               "(config detection.window; default 24h).")] = None,
    window_mode: Annotated[str | None, typer.Option(metavar="MODE",
                                                    help="sliding (default) or tumbling (the seed's fixed "
                                                    "UTC timeslices) (config detection.window_mode).")] = None,
    group_by: Annotated[str | None, typer.Option(metavar="GROUPING",
                                                 help="process (per process instance, default) or seed "
                                                 "(host, user, image, command line) (config detection.group_by).")
                          ] = None,
    count_internal: Annotated[bool | None, typer.Option("--count-internal/--external-only", help="Also count "
                              "private/internal destinations, e.g. a lab C2 on RFC 1918 "
                              "(config scope.count_internal).")
                              ] = None,
    home_net: Annotated[list[str] | None, typer.Option("--home-net", metavar="CIDR",
                                                       help="A CIDR of your own networks, never "
                        "external; repeat for more (config scope.home_networks).")] = None,
    detection: Annotated[list[str] | None, typer.Option("--detection", "-d", metavar="NAME",
                                                        help="Run only this detection; "
                         "repeat for more (default: all).")] = None,
    min_score: Annotated[int | None, typer.Option(metavar="SCORE", help="Hide findings scoring below this, 0-100 "
                                                  "(config scoring.min_score; default 0).")] = None,
    include_suppressed: Annotated[bool, typer.Option(help="Also write findings suppressed as benign (service "
                                                     "traffic, one infrastructure) or below --min-score, each "
                                                     "with suppressed_by.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Table output: every reason, the score "
                                          "breakdown and the evidence locations.")] = False,
    engine: Annotated[str | None, typer.Option(metavar="ENGINE",
                                               help="Where the detections run: duckdb (embedded, default) or "
                                               "spark (local Apache Spark on loopback: needs the spark extra and "
                                               "Java 17+; same findings) (config engine.name).")] = None,
    strict: StrictOpt = False,
) -> None:
    """Hunt for multi-stage C2: read the telemetry, run the detections, write ranked, explained findings."""

    def run() -> int:
        from stagehunt import api, sinks
        from stagehunt.config import ConfigError, load_config, parse_duration
        from stagehunt.detections import DETECTIONS
        from stagehunt.engine import EngineError

        if output not in OUTPUTS:
            fail(f"unknown --output {output!r}; choose one of: {', '.join(OUTPUTS)}")
        writable(out_file)
        for d in detection or []:
            if d not in DETECTIONS:
                fail(f"unknown --detection {d!r}; choose from: {', '.join(DETECTIONS)}")
        try:
            cfg = load_config(config_file)
            cfg = cfg.with_overrides(
                detection={"min_ips": min_ips, "strong_ips": strong_ips,
                           "window": parse_duration(window) if window else None,
                           "window_mode": window_mode, "group_by": group_by},
                scope={"count_internal": count_internal,
                       "home_networks": (*cfg.scope.home_networks, *home_net) if home_net else None},
                scoring={"min_score": min_score}, engine={"name": engine})
        except ConfigError as e:
            fail(str(e))
        diag = Diagnostics()
        try:
            with stages() as on_stage:
                result = api.hunt_detailed(paths, cfg, fmt, detection or None, diag, load=load_inputs,
                                           on_stage=on_stage)
        except EngineError as e:
            fail(f"{cfg.engine.name} engine: {e}")
        findings = result.findings + (result.hidden if include_suppressed else [])
        # the table sink sizes itself: the terminal's width, or WIDE for a pipe (`| less`) as for a file
        target = out_file if out_file is not None else sys.stdout
        opts = {"verbose": verbose} if output == "table" else {}
        try:
            with sinks.open_sink(output, target, **opts) as sink:
                for f in findings:
                    sink.write(f)
        except OSError as e:  # the disk filled, or the file went away since the check
            if out_file is None:
                raise  # standard output: guarded() says so, or stops quietly for a closed pipe
            fail(f"cannot write {out_file}: {e.strerror or e}")
        hidden = f"; {len(result.hidden)} hidden as benign or below --min-score" if result.hidden else ""
        err.print(Text(f"{len(result.findings)} finding(s) from {result.events} event(s) in "
                       f"{len(result.files)} file(s){hidden}"))
        report_problems(diag, strict, result.events)
        return 0

    guarded(run)


@app.command("export")
def export_rules(
    target: Annotated[str, typer.Option("--target", "-t", metavar="TARGET",
                                        help="sigma, sumo-query, sumo-rule, sumo-terraform, "
                                        "splunk, esql or kql.", show_default=False)],
    config_file: Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE",
                                                     help="TOML configuration file: the same "
                                                     "thresholds, window, scope and exclusions as `hunt`.")] = None,
    out_file: Annotated[Path | None, typer.Option("-o", "--out", metavar="FILE",
                                                  help="Write to this file instead of standard "
                                                  "output.", dir_okay=False)] = None,
) -> None:
    """Export the tuned detection as a Sigma rule, a Sumo Logic Cloud SIEM search or rule, Splunk SPL, ES|QL or KQL."""

    def run() -> int:
        from stagehunt.config import ConfigError, load_config
        from stagehunt.export import TARGETS, ExportError, MissingExtra, export

        if target not in TARGETS:
            fail(f"unknown --target {target!r}; choose one of: {', '.join(TARGETS)}")
        writable(out_file)
        try:
            text = export(target, load_config(config_file))
        except (ConfigError, ExportError, MissingExtra) as e:
            fail(str(e))
        if out_file is None:
            sys.stdout.write(text)
        else:
            try:
                out_file.write_text(text, encoding="utf-8")
            except OSError as e:
                fail(f"cannot write {out_file}: {e.strerror or e}")
            err.print(Text(f"wrote {target} to {escape.terminal(str(out_file))}"))
        return 0

    guarded(run)


config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config_file: Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE",
                                                     help="TOML configuration file to apply "
                                                     "over the shipped defaults.")] = None,
) -> None:
    """Print the effective configuration (shipped defaults plus --config) as TOML."""

    def run() -> int:
        from stagehunt.config import DEFAULT_EXCLUDED_IMAGES, ConfigError, load_config

        try:
            cfg = load_config(config_file)
        except ConfigError as e:
            fail(str(e))
        typer.echo(cfg.to_toml())
        if cfg.exclusions.use_defaults:
            typer.echo("# [exclusions] use_defaults = true excludes these images (exact names, any case):\n# "
                       + ", ".join(DEFAULT_EXCLUDED_IMAGES))
        from stagehunt.profiles import PROFILES

        for name in cfg.exclusions.profiles:
            typer.echo(f"# profile {name} ({PROFILES[name].title}) excludes: " + ", ".join(PROFILES[name].images))
        return 0

    guarded(run)


# The lab commands (simulate, validate) live in their own module; registered here, in one place.
from stagehunt import cli_lab  # noqa: E402

app.command()(cli_lab.simulate)
app.command()(cli_lab.validate)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
