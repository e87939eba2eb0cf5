"""The detections' DuckDB SQL as Spark SQL: sqlglot translates, and the rewrites below cover what it
does not (or gets silently wrong) for the constructs the detections use.

What each rewrite keeps equal between the engines:
  list(...) over no rows         -> NULL, not Spark's empty array
  list(x ORDER BY k, ...)        -> the values of collect_list(struct(k is null, k, ..., x)) sorted: DuckDB
                                    puts NULL keys last, Spark's struct order would put them first
  list(DISTINCT x ORDER BY x)    -> array_sort(collect_set(x))
  list(DISTINCT x)               -> collect_set(x)
  count(DISTINCT x) OVER (...)   -> size(collect_set(x) OVER (...))   (Spark has no DISTINCT windows)
  regexp_full_match(s, 'p')      -> s RLIKE '^(?:p)\\z'
  epoch_us(t)                    -> unix_micros(CAST(t AS TIMESTAMP)), in the session's UTC
Spark's collect_list also drops NULL values, which DuckDB's list() keeps: aggregate nullable values
with a FILTER (the detections do). A construct with no faithful Spark form (ASOF joins, SELECT *
REPLACE, a DESC key in an ordered list) raises UnportableSQL naming it, rather than running as
something else.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from stagehunt.engine import EngineError


class UnportableSQL(EngineError):
    """A statement uses a DuckDB construct that has no faithful Spark SQL form here."""


def to_spark(sql: str) -> str:
    """One DuckDB statement as Spark SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    _refuse_unportable(tree)
    tree = tree.transform(_rewrite)
    return tree.sql(dialect="spark")


def _refuse_unportable(tree: exp.Expression) -> None:
    for join in tree.find_all(exp.Join):
        if (join.args.get("method") or "").upper() == "ASOF":
            raise UnportableSQL("ASOF JOIN has no Spark SQL form")
    for star in tree.find_all(exp.Star):
        if star.args.get("replace"):
            raise UnportableSQL("SELECT * REPLACE (...) has no Spark SQL form")


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArrayAgg):
        return _ordered_list(node.this, node.expression)
    if isinstance(node, exp.ArrayAgg) and not isinstance(node.parent, exp.Filter):
        return _ordered_list(node, None)
    if isinstance(node, exp.Window) and isinstance(node.this, exp.Count) and isinstance(node.this.this, exp.Distinct):
        values = node.this.this.expressions
        if len(values) != 1:
            raise UnportableSQL("count(DISTINCT a, b) OVER (...) has no Spark SQL form")
        window = node.copy()
        window.set("this", exp.Anonymous(this="collect_set", expressions=[values[0].copy()]))
        return exp.Anonymous(this="size", expressions=[window])
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            raise UnportableSQL("regexp_full_match with a pattern that is not a literal has no Spark SQL form here")
        # Java's $ also matches before a final line break; RE2's full match does not: anchor with \z
        anchored = exp.Literal.string("^(?:" + pattern.this + r")\z")
        return exp.RegexpLike(this=node.this.copy(), expression=anchored)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
        # times are naive UTC (TIMESTAMP_NTZ); read as TIMESTAMP in the session's UTC they keep their value
        as_utc = exp.Cast(this=node.expressions[0].copy(), to=exp.DataType.build("TIMESTAMP"))
        return exp.Anonymous(this="unix_micros", expressions=[as_utc])
    return node


def _ordered_list(agg: exp.ArrayAgg, where: exp.Expression | None) -> exp.Expression:
    """DuckDB's list(...) aggregate, with its DISTINCT, ORDER BY and FILTER, as Spark expressions. Over no
    rows DuckDB gives NULL where Spark gives an empty array: NULL it is."""
    collected = _collected(agg, where)
    size = exp.Anonymous(this="size", expressions=[collected])
    return exp.If(this=exp.GT(this=size, expression=exp.Literal.number(0)), true=collected.copy(), false=exp.Null())


def _collected(agg: exp.ArrayAgg, where: exp.Expression | None) -> exp.Expression:
    inner = agg.this
    keys: list[exp.Ordered] = []
    if isinstance(inner, exp.Order):
        keys = list(inner.expressions)
        inner = inner.this
    distinct = isinstance(inner, exp.Distinct)
    if distinct:
        if len(inner.expressions) != 1:
            raise UnportableSQL("list(DISTINCT a, b) has no Spark SQL form")
        value = inner.expressions[0]
    else:
        value = inner

    def aggregate(name: str, arg: exp.Expression) -> exp.Expression:
        call = exp.Anonymous(this=name, expressions=[arg])
        return exp.Filter(this=call, expression=where.copy()) if where is not None else call

    if distinct:
        if keys and not (len(keys) == 1 and keys[0].this == value and not keys[0].args.get("desc")):
            raise UnportableSQL("list(DISTINCT x ORDER BY y) has no Spark SQL form unless y is x, ascending")
        collected = aggregate("collect_set", value.copy())
        return exp.Anonymous(this="array_sort", expressions=[collected]) if keys else collected
    if not keys:
        return aggregate("collect_list", value.copy())
    fields: list[exp.Expression] = []
    for i, key in enumerate(keys):
        if key.args.get("desc"):
            raise UnportableSQL("a descending key in list(... ORDER BY ...) has no Spark SQL form here")
        fields += [exp.Literal.string(f"n{i}"), exp.Is(this=key.this.copy(), expression=exp.Null()),
                   exp.Literal.string(f"k{i}"), key.this.copy()]
    fields += [exp.Literal.string("v"), value.copy()]
    collected = aggregate("collect_list", exp.Anonymous(this="named_struct", expressions=fields))
    sorted_ = exp.Anonymous(this="array_sort", expressions=[collected])
    pick = exp.Lambda(this=exp.Dot(this=exp.to_identifier("s"), expression=exp.to_identifier("v")),
                      expressions=[exp.to_identifier("s")])
    return exp.Anonymous(this="transform", expressions=[sorted_, pick])
