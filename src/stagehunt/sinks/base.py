"""What every sink shares: where it writes, closing, and text that any stream can encode."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TextIO

from stagehunt.findings import Finding

# A lone surrogate (from a bad \ud800 escape in a JSON log) cannot be encoded as UTF-8: one hostile
# field would abort the whole output. Replace it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (also inside dicts and lists) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


class Sink:
    """A writer of findings: `write(finding)`, `close()`, and a context manager.

    Given a path it opens (and later closes) the file as UTF-8; given a stream it writes to it and leaves
    it open, only flushing on close.
    """

    def __init__(self, target: TextIO | str | Path):
        self._owned = isinstance(target, str | Path)
        self.stream: TextIO = (open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed in close)
                               if isinstance(target, str | Path) else target)
        self._closed = False

    def write(self, finding: Finding) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Called once by close() before the stream is flushed: sinks that buffer write here."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.finish()
            self.stream.flush()
        finally:
            if self._owned:
                self.stream.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
