"""Parse problems kept as data: counted, located (file and line or record), never raised."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_KEPT_PER_FILE = 20  # the first few are shown; all are counted


def one_line(e: BaseException) -> str:
    """An exception as a diagnostic's message: the first line of its text (its type when it has none),
    at most 300 characters."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    record: int | None
    message: str

    def location(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.record is not None:
            return f"{self.file} record {self.record}"
        return self.file

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"


@dataclass
class Diagnostics:
    """Collects problems per file; keeps the first MAX_KEPT_PER_FILE of each, counts all."""

    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, file: str, message: str, *, line: int | None = None, record: int | None = None) -> None:
        self.counts[file] += 1
        if self.counts[file] <= MAX_KEPT_PER_FILE:
            self.problems.append(Problem(file, line, record, message))

    def add_count(self, file: str, n: int) -> None:
        """Count `n` more problems of `file` beyond those kept (added one by one already)."""
        self.counts[file] += n

    def for_file(self, file: str) -> list[Problem]:
        return [p for p in self.problems if p.file == file]

    @property
    def total(self) -> int:
        return sum(self.counts.values())
