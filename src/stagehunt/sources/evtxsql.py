"""EVTX records straight from the `evtx` package's JSON text into canonical rows, in DuckDB.

The per-record path (flatten.from_evtx_json, then the `flat` dialect) parses, rebuilds and dumps every
record in Python. Here DuckDB reads a whole batch of the parser's JSON text at once and applies the same
mapping: every key the `flat` dialect reads comes from `Event.EventData`, the System part from
`Event.System`, and `canonical_sql` does the rest, so both paths share one mapping.

The result must be exactly the per-record path's. Where the two could read a record differently, or
the record is not an event at all, `prepare` or `query` refuses the batch and the caller loads it record
by record; `query` lists the cases.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from stagehunt.sources.dialects import DIALECTS, canonical_sql
from stagehunt.sources.jsonfile import DATA_ERRORS

if TYPE_CHECKING:
    from stagehunt.store import EventStore, FileInfo

__all__ = ["CHECKS", "FIELDS_SQL", "SELECT_SQL", "Refused", "insert", "prepare"]

_FLAT = DIALECTS["flat"]


class Refused(Exception):
    """A batch the per-record path might load differently; nothing of it was loaded."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _struct(fields: dict[str, str]) -> str:
    return "STRUCT(" + ", ".join(f"{_q(k)} {t}" for k, t in fields.items()) + ")"


# Keys flatten._finish takes from System (they replace EventData keys of the same name).
_SYSTEM_KEYS = {
    "EventID": "_eid",
    "Channel": "s.Channel",
    "Hostname": "s.Computer",
    "TimeCreated": 's.TimeCreated."#attributes".SystemTime',
    "EventRecordID": "CAST(_rid AS VARCHAR)",
}
_DATA_KEYS = [k for k in _FLAT.columns if k not in _SYSTEM_KEYS]

# What read_json extracts; EventID and EventRecordID stay JSON, as their type decides their text.
# read_json fails on a value that is not an object where an object is declared and on a repeated key:
# flatten (orjson) would take the last of two keys, or an empty EventData for one that is no object.
_COLUMNS = "{'Event': '" + _struct({
    "System": _struct({"EventID": "JSON", "Channel": "VARCHAR", "Computer": "VARCHAR",
                       "TimeCreated": _struct({"#attributes": _struct({"SystemTime": "VARCHAR"})}),
                       "EventRecordID": "JSON"}),
    "EventData": _struct(dict.fromkeys(_DATA_KEYS, "VARCHAR")),
}).replace("'", "''") + "'}"

# One row per record, in order: System as `s`, EventData as `ed`. Qualifiers make EventID an object,
# whose "#text" is the id.
FIELDS_SQL = (
    "SELECT Event IS NULL AS _no_event, Event.System AS s, Event.EventData AS ed, "
    "CASE json_type(Event.System.EventID) WHEN 'OBJECT' THEN Event.System.EventID->'$.\"#text\"' "
    "ELSE Event.System.EventID END AS _eidj "
    f"FROM read_json(?, format='newline_delimited', records=true, columns={_COLUMNS})")


def _any_nested(cols: list[str]) -> str:
    """Some VARCHAR read of a JSON value may be an object or array (starts `{"`, is `{}`, or is `[...]`):
    DuckDB renders those its own way (hex escapes, number format), flatten with orjson. (A plain string of
    that shape only costs its batch the per-record path.) Strings, booleans and numbers read as flatten
    writes them. One regex over the values joined by \\x01, which JSON text never holds raw, plans in half
    the time of a test per value."""
    values = "concat_ws(chr(1), " + ", ".join(cols) + ")"
    return f"regexp_matches({values}, '(^|\\x01)(\\{{\"|\\{{\\}}(\\x01|$)|\\[[^\\x01]*\\](\\x01|$))')"


def _json_text(col: str) -> str:
    """str() of a JSON string or integer; NULL for null or missing (other types fail the checks)."""
    return (f"CASE json_type({col}) WHEN 'VARCHAR' THEN {col}->>'$' WHEN 'UBIGINT' THEN CAST({col} AS VARCHAR) "
            f"WHEN 'BIGINT' THEN CAST({col} AS VARCHAR) END")


_VARCHAR = ["s.Channel", "s.Computer", 's.TimeCreated."#attributes".SystemTime', *(f"ed.{_q(k)}" for k in _DATA_KEYS)]

# Every way the per-record path could read a row of FIELDS_SQL differently; any one fails the
# statement. A check that comes out NULL (a row this SQL did not foresee) fails it too.
CHECKS = {
    "not an event": "_no_event OR s IS NULL",  # the per-record path reports and skips it
    # flatten takes str() of the id, which for a bool, float or dict is not its JSON text
    "EventID": "NOT coalesce(json_type(_eidj) IN ('NULL', 'VARCHAR', 'UBIGINT', 'BIGINT'), true)",
    # source_record is EventRecordID if it is a BIGINT, else the record header's number (not at hand here)
    "EventRecordID": "json_type(s.EventRecordID) IS DISTINCT FROM 'UBIGINT' "
                     "OR CAST(s.EventRecordID AS UBIGINT) >= 9223372036854775808",
    "nested value": _any_nested(_VARCHAR),
}


def _select_sql() -> str:
    fail = " OR ".join(f"coalesce({c}, true)" for c in CHECKS.values())
    checked = (f"SELECT *, {_json_text('_eidj')} AS _eid, CAST(s.EventRecordID AS BIGINT) AS _rid "
               f"FROM ({FIELDS_SQL}) WHERE CASE WHEN {fail} THEN error('EVTX batch needs the per-record path') "
               "ELSE true END")
    columns = [f"{_SYSTEM_KEYS.get(k, f'ed.{_q(k)}')} AS {_q(k)}" for k in _FLAT.columns]
    canonical = canonical_sql(f"SELECT {_FLAT.raw_select_sql()}, _rid FROM (SELECT {', '.join(columns)}, _rid "
                              f"FROM ({checked}))")
    # canonical_sql selects the canonical columns from `SELECT *, ... FROM (raw)`, where _rid is in scope:
    # put the origin columns in its select list too (store.insert_arrow takes columns by name)
    assert canonical.startswith("SELECT ")
    return "SELECT ? AS source_file, _rid AS source_record, " + canonical.removeprefix("SELECT ")


SELECT_SQL = _select_sql()

# Security events (5156 and others) name a pid `ProcessID`. flatten renames it `ProcessId` unless that
# exists too, and jsonfile's 5156 fill reads a kept one; read_json cannot tell which keys exist (struct
# field names are case-insensitive, so it cannot read both spellings). Such a key, first in EventData or
# after another, shows in the compact JSON evtx writes (a string value is never followed by `:`);
# Execution's `{"#attributes":{"ProcessID"` does not. Renamed here as flatten renames it, a record with
# only that spelling reads the same; one with both goes record by record.
_PROCESS_ID = (b',"ProcessID":', b'"EventData":{"ProcessID":')
_RENAMED = (b',"ProcessId":', b'"EventData":{"ProcessId":')


def _renamed_process_id(lines: list[bytes]) -> list[bytes] | None:
    """`lines` with EventData's `ProcessID` key spelled `ProcessId`; None if a record has both spellings."""
    out = []
    for line in lines:
        if any(key in line for key in _PROCESS_ID):
            if b'"ProcessId":' in line:
                return None
            for old, new in zip(_PROCESS_ID, _RENAMED, strict=True):
                line = line.replace(old, new)
        out.append(line)
    return out


def prepare(records: list[str], work: Path) -> str | None:
    """Write `records` (the `data` of PyEvtxParser.records_json(), in order) to `work` for `query`, one
    per line. Returns why the batch must go record by record instead, or None."""
    # A few hundred records per buffer (one for the whole batch would be mapped afresh, page by page,
    # each time) and one system call for all of them (each call gives up the GIL, and getting it back
    # beside the busy parser thread costs a switch interval).
    parts = []
    for i in range(0, len(records), 256):
        lines = [r.encode("utf-8", "surrogatepass") for r in records[i:i + 256]]
        lines.append(b"")  # every line ends in a newline
        text = b"\n".join(lines)
        if any(key in text for key in _PROCESS_ID):
            renamed = _renamed_process_id(lines)
            if renamed is None:
                return "EventData holds both ProcessID and ProcessId"
            text = b"\n".join(renamed)
        parts.append(text)
    # The scratch file is overwritten in place and cut to length after: truncating it first frees its pages
    # for the kernel to find again (up to 0.4 s of system time per 250 MiB, against 0.06 s).
    fd = os.open(work, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _write_all(fd, parts)
        os.ftruncate(fd, sum(map(len, parts)))
    finally:
        os.close(fd)
    return None


def _write_all(fd: int, parts: list[bytes]) -> None:
    writev = getattr(os, "writev", None)  # POSIX
    for i in range(0, len(parts), 1024):  # IOV_MAX is 1024 on Linux
        group = parts[i:i + 1024]
        done = writev(fd, group) if writev else 0
        rest = memoryview(b"".join(group))[done:] if done < sum(map(len, group)) else memoryview(b"")
        while rest:  # a short write, or no writev
            rest = rest[os.write(fd, rest):]


def insert(store: EventStore, info: FileInfo, work: Path, count: int) -> None:
    """Insert the canonical rows (source_file `info.name`) of the `count` records `prepare` wrote to `work`
    straight into the store: DuckDB reads the text and stores the rows in one statement.

    Raises Refused, with nothing inserted, when the per-record path might load a record differently: it is
    no Event with a System object, its EventID is no string or integer, its EventRecordID no BIGINT, a value
    read is an object or array, two keys repeat, a part that must be an object is not, or the text is no
    single line of JSON. (evtx writes floats, NaN included, as JSON strings, so DuckDB's leniency with bare
    NaN and the like never meets orjson's strictness.)
    """
    made: list[int] = []  # rows the statement made: one per line of `work`

    def one_per_record(rows: int) -> bool:
        made.append(rows)
        return rows == count

    try:
        kept = store.insert_rows(info, SELECT_SQL, [info.name, str(work)], keep=one_per_record)
    except DATA_ERRORS as e:
        raise Refused(str(e).splitlines()[0]) from None
    if kept is None:  # a raw newline in a record (pretty-printed JSON)
        raise Refused(f"{made[0]} lines for {count} records")
