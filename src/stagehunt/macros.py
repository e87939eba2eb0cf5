"""The SQL functions the preparation and the detections call, defined once for both engines: each body
is DuckDB SQL, made a DuckDB macro as it is and a Spark SQL function through sqlglot.

(`line_of_row` is the store's own: it depends on how the events were stored, see store.py.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Macro:
    name: str
    params: tuple[tuple[str, str], ...]  # (name, Spark type)
    returns: str  # Spark type
    body: str  # DuckDB SQL
    spark_body: str | None = None  # Spark SQL, where sqlglot's translation of `body` would not mean the same

    def duckdb(self) -> str:
        return f"CREATE OR REPLACE TEMP MACRO {self.name}({', '.join(p for p, _ in self.params)}) AS {self.body};"

    def spark(self) -> str:
        import sqlglot  # only the Spark engine needs it

        body = self.spark_body or sqlglot.transpile(self.body, read="duckdb", write="spark")[0]
        params = ", ".join(f"{p} {t}" for p, t in self.params)
        return f"CREATE OR REPLACE TEMPORARY FUNCTION {self.name}({params}) RETURNS {self.returns} RETURN {body}"


MACROS = (
    # the file name of a Windows or POSIX path
    Macro("base_name_of", (("p", "STRING"),), "STRING", r"regexp_extract(p, '[^\\/]*$')"),
    # a ProcessGuid, lower case without braces; an all-zero guid (Sysmon for Linux when the parent
    # predates Sysmon) means "unknown"
    Macro("norm_guid", (("g", "STRING"),), "STRING",
          "CASE WHEN regexp_matches(g, '[^{} 0-]') THEN lower(CASE WHEN starts_with(g, '{') AND ends_with(g, '}') "
          "THEN substring(g, 2, length(g) - 2) ELSE trim(g, '{} ') END) END"),
    Macro("key_of_guid", (("host", "STRING"), ("ng", "STRING")), "STRING", "'g|' || coalesce(host, '') || '|' || ng"),
    Macro("guid_key", (("host", "STRING"), ("g", "STRING")), "STRING", "key_of_guid(host, norm_guid(g))"),
    # a process without a guid: host, pid and the time of its start ('-' when not logged)
    Macro("pid_key", (("host", "STRING"), ("pid", "BIGINT"), ("started", "TIMESTAMP_NTZ")), "STRING",
          "'p|' || coalesce(host, '') || '|' || pid::VARCHAR || '|' || "
          "coalesce(strftime(started, '%Y-%m-%d') || 'T' || strftime(started, '%H:%M:%S.%f'), '-')"),
    # Sysmon's GrantedAccess ("0x1FFFFF") as a number, NULL if it is none: DuckDB casts hex text, Spark does not
    Macro("access_mask", (("granted", "STRING"),), "BIGINT", "TRY_CAST(trim(granted) AS BIGINT)",
          spark_body="CASE WHEN trim(granted) RLIKE '^0[xX][0-9a-fA-F]{1,15}$' "
                     "THEN CAST(conv(substring(trim(granted), 3), 16, 10) AS BIGINT) "
                     "ELSE TRY_CAST(trim(granted) AS BIGINT) END"),
)


def duckdb_macros() -> str:
    return "\n".join(m.duckdb() for m in MACROS)


def spark_functions() -> list[str]:
    return [m.spark() for m in MACROS]
