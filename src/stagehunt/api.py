"""The Python API that the CLI wraps: `hunt(paths, config) -> findings`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stagehunt import engine, sources
from stagehunt.config import Config
from stagehunt.diagnostics import Diagnostics
from stagehunt.findings import Finding
from stagehunt.store import EventStore, FileInfo


@dataclass
class HuntResult:
    findings: list[Finding]  # shown: not suppressed, score >= min_score; highest score first
    files: list[FileInfo]
    events: int
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    hidden: list[Finding] = field(default_factory=list)  # suppressed or below min_score, with reasons


def open_store(cfg: Config) -> EventStore:
    return EventStore(memory_limit=cfg.engine.memory_limit, threads=cfg.engine.threads or None)


def hunt_detailed(paths: Sequence[str | Path], config: Config | None = None, fmt: str = "auto",
                  detections: list[str] | None = None, diagnostics: Diagnostics | None = None,
                  load: Callable[[EventStore, list[str], str, Diagnostics], None] | None = None,
                  on_stage: Callable[[str], None] | None = None) -> HuntResult:
    """Read `paths`, run the detections, and return findings with what was read and what could not be.
    `load` replaces the plain read (the CLI's shows a progress bar); `on_stage` is told each later stage."""
    cfg = config or Config()
    diag = diagnostics if diagnostics is not None else Diagnostics()
    with open_store(cfg) as store:
        names = [str(p) for p in paths]
        if load is not None:
            load(store, names, fmt, diag)
        else:
            sources.load(store, list(sources.expand(names, store.tmpdir)), fmt, diag)
        everything = engine.run(store, cfg, detections, on_stage)
        shown = [f for f in everything if not f.suppressed and (f.score or 0) >= cfg.scoring.min_score]
        ids = {id(f) for f in shown}  # by identity: `f not in shown` compared whole findings, n * n times
        hidden = [f for f in everything if id(f) not in ids]
        return HuntResult(shown, list(store.files), store.count(), diag, hidden)


def hunt(paths: Sequence[str | Path], config: Config | None = None, fmt: str = "auto") -> list[Finding]:
    """Findings for the telemetry at `paths` (files, directories, globs, archives), highest score first;
    suppressed and low-scoring ones are left out (see hunt_detailed(...).hidden)."""
    return hunt_detailed(paths, config, fmt).findings
