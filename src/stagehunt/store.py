"""The event store: an embedded DuckDB holding the canonical `events` table.

DuckDB keeps the events columnar and spills to disk past its memory limit, so millions of events
never live as Python objects; inputs too big for the limit are kept compressed (`expect_bytes`).
Readers insert through `insert_select` (a SELECT of canonical columns, e.g. over read_json) or
`insert_arrow`; both record where each row came from. Queries read an event's line as
`line_of_row(source_line, rowid)` (see `finish`).
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from stagehunt.schema import COLUMN_NAMES, create_table_sql
from stagehunt.tables import temp_table

if TYPE_CHECKING:  # readers that stage rows hand over Arrow tables; the store itself needs no pyarrow
    import pyarrow as pa


@dataclass
class FileInfo:
    """What was read from one input file (for `inspect` and run summaries)."""

    name: str
    format: str
    first_rowid: int
    rows: int = 0
    origin_unit: str = "line"  # line | record
    notes: list[str] = field(default_factory=list)


class EventStore:
    """One DuckDB connection with the `events` table; a context manager."""

    def __init__(self, memory_limit: str = "1GB", temp_directory: str | None = None, threads: int | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="stagehunt-")
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")  # it would print into our output
        self.con.execute("SET preserve_insertion_order = true")  # rowid order = file order: line numbers for free
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.memory_limit_bytes = _bytes(memory_limit)
        self.compressed = False
        self.con.execute(f"SET temp_directory = '{temp_directory or self._tmp.name}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute(create_table_sql())
        self.files: list[FileInfo] = []
        self._next_rowid = 0
        self._implicit_lines: list[tuple[int, int]] = []  # rowid ranges whose line is rowid - start + 1
        self._define_line_of_row()

    @property
    def next_rowid(self) -> int:
        """The rowid the next inserted event will get."""
        return self._next_rowid

    @property
    def tmpdir(self) -> Path:
        return Path(self._tmp.name)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()

    # -- inserting -------------------------------------------------------------------------------

    def expect_bytes(self, total: int) -> None:
        """Told, before anything is loaded, how many bytes of input are coming. When their events would take
        more than 60 % of the memory limit uncompressed (about half the input's size, for JSON lines as for
        EVTX), `events` moves to an in-memory database that DuckDB compresses when it checkpoints (once, in finish()).
        Uncompressed, such inputs leave the hunt's own tables no room: DuckDB spills, and every
        later scan reads spilled blocks back (at 1.5-5 M events the hunt after the load took 1.5-2.7x as
        long). Compressing costs about 1 s per 1 M events, so smaller inputs stay uncompressed."""
        if self.compressed or self._next_rowid or total / 2 <= 0.6 * self.memory_limit_bytes:
            return
        self.con.execute("ATTACH ':memory:' AS compressed (COMPRESS)")
        self.con.execute("USE compressed")  # unqualified `events` now means the compressed one
        self.con.execute(create_table_sql())
        self.con.execute("DROP TABLE memory.main.events")
        # Past 16 MiB of changes a commit checkpoints, which compresses the table: every statement of small
        # files read together did (41 s of a 62 s load of 2500 files, 5 M events). finish() checkpoints once.
        self.con.execute("SET checkpoint_threshold = '1TB'")
        self.compressed = True

    def begin_file(self, name: str, fmt: str, origin_unit: str = "line") -> FileInfo:
        info = FileInfo(name, fmt, self._next_rowid, origin_unit=origin_unit)
        self.files.append(info)
        return info

    def insert_select(self, info: FileInfo, select_sql: str, params: list, origins: pa.Table | None = None,
                      keep: Callable[[int], bool] | None = None, by_record: bool = False) -> int | None:
        """Insert the rows of a SELECT yielding canonical columns up to (not including) the source_* ones.

        Without `origins`, the n-th row is line n of `info.name` (record n with `by_record`: the elements of
        a JSON array). With it, row n takes
        `origins["line"][n]` and `origins["record"][n]` (for readers that rewrite their input).
        With `keep`, called with the number of rows once they are in (and can be queried): unless it returns
        true they are taken out again and None is returned (a check that ran beside the insert can veto it).
        Raises duckdb.Error on input DuckDB rejects; the statement then inserts nothing.
        """
        insert = f"INSERT INTO events SELECT *, ?, NULL, NULL FROM ({select_sql})"
        if keep is None:
            n = self.con.execute(insert, [info.name, *params]).fetchone()[0]
        elif (n := self._insert_if(insert, [info.name, *params], keep)) is None:
            return None
        base = self._next_rowid
        if by_record:
            self.con.execute("UPDATE events SET source_record = rowid - ? + 1 WHERE rowid >= ?", [base, base])
        elif origins is None and self.compressed:
            # an UPDATE of a compressed table costs ~1.2 s per 1 M rows (0.03 s uncompressed): the line
            # stays implicit, and line_of_row gives it
            self._implicit_lines.append((base, base + n))
        elif origins is None:
            self.con.execute("UPDATE events SET source_line = rowid - ? + 1 WHERE rowid >= ?", [base, base])
        else:
            self._set_origins(origins, base)
        self._next_rowid += n
        info.rows += n
        return n

    def insert_files(self, infos: list[FileInfo], select_sql: str, params: list,
                     keep: Callable[[int], bool] | None = None, origins: pa.Table | None = None) -> bool:
        """Insert the rows of one SELECT over several files laid end to end (canonical columns up to the
        source_* ones): file k gave `infos[k].rows` rows, after those of the files before it. Without
        `origins`, each file's n-th row is its line n; with it, row i takes `origins["line"][i]` and
        `origins["record"][i]`, as in insert_select. `keep` as for insert_select, and the rows must number the
        files' rows together; True when the rows were kept, and then the files are the store's, with their
        first rowids."""
        n = self._insert_if(f"INSERT INTO events SELECT *, NULL, NULL, NULL FROM ({select_sql})", params,
                            lambda n: n == sum(i.rows for i in infos) and (keep is None or keep(n)))
        if n is None:
            return False
        base = first = self._next_rowid
        for info in infos:
            info.first_rowid = first
            first += info.rows
        # each row's file (and line), from the rowid ranges of the files: a range join on few ranges
        self.con.execute(
            "UPDATE events SET source_file = f.name, "
            "source_line = CASE WHEN f.lines THEN events.rowid - f.first + 1 END FROM "
            "(SELECT unnest(?::VARCHAR[]) AS name, unnest(?::BIGINT[]) AS first, unnest(?::BIGINT[]) AS stop, "
            "? AS lines) f WHERE events.rowid >= f.first AND events.rowid < f.stop",
            [[i.name for i in infos], [i.first_rowid for i in infos], [i.first_rowid + i.rows for i in infos],
             origins is None])
        if origins is not None:
            self._set_origins(origins, base)
        self.files.extend(infos)
        self._next_rowid += n
        return True

    def _set_origins(self, origins: pa.Table, base: int) -> None:
        """Rows from rowid `base` on take their line and record number from `origins`, row by row."""
        self.con.register("_origins", origins)
        self.con.execute(
            "UPDATE events SET source_line = o.line, source_record = o.record FROM "
            "(SELECT row_number() OVER () - 1 AS ordinal, line, record FROM _origins) o "
            "WHERE events.rowid >= ? AND events.rowid - ? = o.ordinal", [base, base])
        self.con.unregister("_origins")

    def _insert_if(self, insert: str, params: list, keep: Callable[[int], bool]) -> int | None:
        """Run `insert` in a transaction kept only if keep(rows inserted) is true; the rows, or None."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            n = self.con.execute(insert, params).fetchone()[0]
            kept = keep(n)
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        if not kept:
            self.con.execute("ROLLBACK")
            return None
        self.con.execute("COMMIT")  # row ids are final only now: number the lines after this
        return n

    def insert_rows(self, info: FileInfo, select_sql: str, params: list, keep: Callable[[int], bool]) -> int | None:
        """Insert the rows of a SELECT that names canonical columns, its source_* ones included (columns it
        lacks are NULL), as insert_arrow does for a table but without leaving DuckDB; kept only if
        keep(rows inserted), else taken out again and None returned. Raises duckdb.Error on input DuckDB
        rejects; the statement then inserts nothing."""
        n = self._insert_if(f"INSERT INTO events BY NAME {select_sql}", params, keep)
        if n is not None:
            self._next_rowid += n
            info.rows += n
        return n

    def insert_arrow_files(self, infos: list[FileInfo], table: pa.Table) -> None:
        """Insert rows already in canonical columns (their source_* included) of several files at once: file
        k gave `infos[k].rows` of them, after those of the files before it; the files become the store's."""
        assert table.num_rows == sum(i.rows for i in infos)
        first = self._next_rowid
        for info in infos:
            info.first_rowid, first = first, first + info.rows
        self._append_arrow(table)
        self.files.extend(infos)

    def insert_arrow(self, info: FileInfo, table: pa.Table) -> int:
        """Insert rows already in canonical columns (missing columns are NULL)."""
        self._append_arrow(table)
        info.rows += table.num_rows
        return table.num_rows

    def _append_arrow(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        cols = [c if c in table.column_names else None for c in COLUMN_NAMES]
        select = ", ".join(f'"{c}"' if c else "NULL" for c in cols)
        self.con.register("_batch", table)
        self.con.execute(f"INSERT INTO events SELECT {select} FROM _batch")
        self.con.unregister("_batch")
        self._next_rowid += table.num_rows

    # -- after loading ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Normalise what SQL cannot: IP spellings (IPv6 forms, IPv4-mapped text) to one text form; in a
        compressed store, compress the events (the one checkpoint of the load); define line_of_row for the
        files loaded."""
        self._define_line_of_row()
        for col in ("src_ip", "dst_ip", "remote_ip"):
            odd = self.con.execute(
                f"SELECT DISTINCT {col} FROM events WHERE {col} LIKE '%:%' OR {col} LIKE '% %' OR {col} LIKE '[%'"
            ).fetchall()
            fixes = [(raw, norm) for (raw,) in odd if (norm := canonical_ip(raw)) != raw]
            if fixes:
                temp_table(self.con, "_ipfix", {"raw": ("VARCHAR", [r for r, _ in fixes]),
                                                "norm": ("VARCHAR", [n for _, n in fixes])})
                self.con.execute(f"UPDATE events SET {col} = f.norm FROM _ipfix f WHERE events.{col} = f.raw")
                self.con.execute("DROP TABLE _ipfix")
        if self.compressed:
            self.con.execute("CHECKPOINT compressed")
            self.con.execute("RESET checkpoint_threshold")

    def count(self) -> int:
        return self.con.execute("SELECT count(*) FROM events").fetchone()[0]

    def _define_line_of_row(self) -> None:
        """`line_of_row(source_line, rowid)`: an event's line. In a compressed store, a clean JSON-lines
        file's lines are not written into `source_line` (see insert_select) but follow from the rowid: the
        macro tells them by its rowid range (a balanced tree of tests, for many files)."""
        def tree(ranges: list[tuple[int, int]]) -> str:
            if len(ranges) == 1:
                first, stop = ranges[0]
                return f"CASE WHEN rid >= {first} AND rid < {stop} THEN rid - {first - 1} END"
            mid = len(ranges) // 2
            return f"CASE WHEN rid < {ranges[mid][0]} THEN {tree(ranges[:mid])} ELSE {tree(ranges[mid:])} END"

        implicit = f"coalesce(line, {tree(self._implicit_lines)})" if self._implicit_lines else "line"
        self.con.execute(f"CREATE OR REPLACE TEMP MACRO line_of_row(line, rid) AS {implicit}")


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _bytes(size: str) -> int:
    """'1GB' -> 10**9, '512MiB' -> 2**29: DuckDB's reading of a memory_limit (GB is 1000**3, GiB 1024**3)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*", size, re.I)
    if not m:
        raise ValueError(f"not a size: {size!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def canonical_ip(text: str | None) -> str | None:
    """One text form per address: compressed IPv6 without brackets or zone, and IPv4-mapped IPv6
    as the IPv4 address it is (so `::ffff:8.8.8.8` and `8.8.8.8` count once); unparseable text kept."""
    if text is None:
        return None
    t = text.strip().strip("[]")
    try:
        a = ipaddress.ip_address(t.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)
