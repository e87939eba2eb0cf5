"""Temp tables from Python lists: the list-parameter and the Arrow path give the same table."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from stagehunt.tables import temp_table

_ROW = st.tuples(st.none() | st.integers(-(2**63), 2**63 - 1), st.none() | st.integers(0, 2**64 - 1),
                 st.none() | st.text(), st.none() | st.booleans())


def _table(rows: list[tuple], arrow_from: int) -> tuple[list, list]:
    con = duckdb.connect()
    temp_table(con, "t", {"a": ("BIGINT", [r[0] for r in rows]), "b": ("UBIGINT", [r[1] for r in rows]),
                          "c": ("VARCHAR", [r[2] for r in rows]), "d": ("BOOLEAN", [r[3] for r in rows])},
               arrow_from=arrow_from)
    types = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 't'").fetchall()
    return types, con.execute("SELECT * FROM t ORDER BY rowid").fetchall()


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_ROW, max_size=30))
def test_list_parameters_and_arrow_make_the_same_table(rows: list[tuple]) -> None:
    by_params, by_arrow = _table(rows, arrow_from=10**9), _table(rows, arrow_from=0)
    assert by_params == by_arrow
    assert by_params[0] == [("a", "BIGINT"), ("b", "UBIGINT"), ("c", "VARCHAR"), ("d", "BOOLEAN")]
    assert by_params[1] == rows  # in order, nothing lost or changed
