"""Temp tables from Python lists: scope decisions, exclusions, scoring's prevalence rows.

Few rows go in as DuckDB list parameters, so a hunt needs no pyarrow (importing it costs ~0.1 s). Many rows go
through Arrow: parameters cost ~0.9 µs a row against ~0.14 µs, and scoring a 5 M-event hunt passes hundreds
of thousands of rows (1.46 s as parameters).
"""

from __future__ import annotations

import duckdb

ARROW_FROM = 100_000  # rows; below it, list parameters take under 0.1 s
_ARROW_TYPES = {"BIGINT": "int64", "UBIGINT": "uint64", "VARCHAR": "string", "BOOLEAN": "bool"}


def temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[str, list]],
               arrow_from: int = ARROW_FROM) -> None:
    """CREATE OR REPLACE TEMP TABLE `name` with these columns (name: (DuckDB type, values), values of equal
    length)."""
    rows = len(next(iter(columns.values()))[1]) if columns else 0
    if rows < arrow_from:
        select = ", ".join(f'unnest(?::{t}[]) AS "{c}"' for c, (t, _) in columns.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select}", [v for _, v in columns.values()])
        return
    import pyarrow as pa

    view = f"_{name}_arrow"
    con.register(view, pa.table({c: pa.array(v, _ARROW_TYPES[t]) for c, (t, v) in columns.items()}))
    try:
        select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, (t, _) in columns.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select} FROM {view}")
    finally:
        con.unregister(view)
