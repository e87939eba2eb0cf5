"""Process identity, context and tree, as DuckDB tables built from the canonical events.

A process instance is keyed by its ProcessGuid (per host). Without a guid, by host + pid + the
start time of the latest process start with that pid at or before the event, so a reused pid does
not merge two processes. Context (command line, user, parent, hashes) comes from the process-start
event; a process whose start was not logged keeps what its own events say and is marked unknown.

Tables made here (temporary, in the store's connection):
  host_sources  per host: whether Sysmon logged its network events / process starts
  proc  one row per started process: key, host, pid, time, guid, image, parent (guid, pid, key: the
        tree) and erow, the start event's rowid in `events` (its command line, hashes, evidence...)
  conn  one row per counted outbound connection: pkey, time, ip, port, protocol, evidence
"""

from __future__ import annotations

import duckdb

from stagehunt.macros import duckdb_macros


def build(con: duckdb.DuckDBPyConnection) -> None:
    """Create `host_sources` and `proc` from `events`.

    Work that only some inputs need (Security events beside Sysmon, parents known by pid alone, the
    same start logged twice) is asked about first and skipped when absent: the common case is one
    pass over the process starts."""
    con.execute(duckdb_macros())
    # Where a host has Sysmon, Security 4688/5156 repeat what Sysmon says (without guids): use Sysmon.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE host_sources AS
        SELECT host,
               bool_or(provider LIKE 'sysmon%' AND kind = 'network') AS sysmon_net,
               bool_or(provider LIKE 'sysmon%' AND kind = 'process_start') AS sysmon_proc
        FROM events WHERE provider = 'security' OR kind IN ('network', 'process_start') GROUP BY host
    """)
    security_filter = _security_filter(con, "sysmon_proc")
    # Narrow on purpose: the start's other columns (command lines, hashes, evidence...) stay in `events`
    # and are fetched by `erow` for the few processes that need them, so the tree costs little memory.
    starts = f"""
        SELECT CASE WHEN g IS NOT NULL THEN key_of_guid(e.host, g) ELSE pid_key(e.host, e.pid, e.time) END AS key,
               e.host, e.pid, e.time, g AS guid, e.image, pg AS parent_guid, e.parent_pid,
               CASE WHEN pg IS NOT NULL THEN key_of_guid(e.host, pg) END AS parent_key, e.erow
        FROM (SELECT host, pid, time, image, parent_pid, provider, rowid AS erow, norm_guid(process_guid) AS g,
                     norm_guid(parent_guid) AS pg
              FROM events WHERE kind = 'process_start') e
        WHERE true {security_filter}"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE proc AS {starts}")
    # the same start read twice (two exports of one log) is one process: the first read wins
    if con.execute("SELECT count(*) - count(DISTINCT key) FROM proc").fetchone()[0]:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE proc AS
            SELECT * FROM proc QUALIFY row_number() OVER (PARTITION BY key ORDER BY time, erow) = 1
        """)
    # the parent, when only its pid is known: its latest start before the child's
    if _has(con, "SELECT 1 FROM proc WHERE parent_guid IS NULL AND parent_pid IS NOT NULL LIMIT 1"):
        con.execute("""
            UPDATE proc SET parent_key = b.parent_key FROM (
                SELECT d.key, pid_key(p.host, p.pid, p.time) AS parent_key
                FROM proc d ASOF JOIN (SELECT host, pid, time FROM proc WHERE guid IS NULL) p
                  ON p.host IS NOT DISTINCT FROM d.host AND p.pid = d.parent_pid AND d.time >= p.time
                WHERE d.parent_guid IS NULL AND d.parent_pid IS NOT NULL
            ) b WHERE proc.key = b.key
        """)


def _security_filter(con: duckdb.DuckDBPyConnection, sysmon_flag: str) -> str:
    """AND-clause dropping an event `e` from Security when Sysmon covers its host ("" without Security)."""
    if not _has(con, "SELECT 1 FROM events WHERE provider = 'security' LIMIT 1"):
        return ""
    return (f"AND (e.provider <> 'security' OR NOT EXISTS (SELECT 1 FROM host_sources h "
            f"WHERE h.host IS NOT DISTINCT FROM e.host AND h.{sysmon_flag}))")


def _has(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    return con.execute(sql).fetchone() is not None


def keyed_sql(relation: str, guid_col: str = "process_guid", pid_col: str = "pid", *,
              row_id: str | None = None) -> str:
    """SELECT pkey, * over `relation` (events): each event's process instance key, the same way for
    every kind — by guid, else by the latest start of that pid at or before the event, else by image.

    Without `row_id` the start is found by DuckDB's ASOF join (the many network events of the
    preparation); with it, `row_id` naming a column unique per row, by `latest_start_sql`, which
    any SQL engine runs (the detections, see spark_sql.py)."""
    by_guid = f"SELECT guid_key(host, {guid_col}) AS pkey, * FROM {relation} WHERE norm_guid({guid_col}) IS NOT NULL"

    def by_pid(started: str) -> str:  # the key of a guid-less event `n` whose process started at `started`
        return f"""CASE WHEN n.{pid_col} IS NULL THEN 'i|' || coalesce(n.host, '') || '|' || coalesce(n.image, '?')
                        ELSE pid_key(n.host, n.{pid_col}, {started}) END AS pkey"""

    no_guid = f"(SELECT * FROM {relation} WHERE norm_guid({guid_col}) IS NULL)"
    if row_id is not None:
        return f"""
        {by_guid}
        UNION ALL
        SELECT {by_pid("n.started")}, n.* EXCLUDE (started)
        FROM ({latest_start_sql(no_guid, pid_col, "time", row_id)}) n
    """
    return f"""
        {by_guid}
        UNION ALL BY NAME
        SELECT {by_pid("s.time")}, n.*
        FROM {no_guid} n
        ASOF LEFT JOIN (SELECT host, pid, time FROM proc WHERE guid IS NULL) s
          ON s.host IS NOT DISTINCT FROM n.host AND s.pid = n.{pid_col} AND n.time >= s.time
    """


def latest_start_sql(relation: str, pid_col: str, time_col: str, row_id: str) -> str:
    """SELECT *, started over `relation`: per row, when the latest start of a process without a guid with
    the row's host and pid (`pid_col`) at or before its `time_col` happened (NULL if none logged).
    A join and a ranking per row (`row_id`: a column unique per row), so any SQL engine runs it."""
    return f"""
        SELECT * EXCLUDE (start_rank) FROM (
            SELECT n.*, s.time AS started,
                   row_number() OVER (PARTITION BY n.{row_id} ORDER BY s.time DESC) AS start_rank
            FROM {relation} n
            LEFT JOIN (SELECT host, pid, time FROM proc WHERE guid IS NULL) s
              ON s.host IS NOT DISTINCT FROM n.host AND s.pid = n.{pid_col} AND n.{time_col} >= s.time
        ) ranked WHERE start_rank = 1"""


def build_connections(con: duckdb.DuckDBPyConnection, excluded_ports: tuple[int, ...]) -> None:
    """Create `conn`: outbound connections to counted addresses (table `ip_scope(ip, counted)` must exist).
    A connection logged twice (overlapping exports: a collector's and the host's own; a SIEM pipeline's
    at-least-once delivery) is one connection, cited where it was read first."""
    ports = ", ".join(str(int(p)) for p in excluded_ports)
    port_filter = f"AND (e.remote_port IS NULL OR e.remote_port NOT IN ({ports}))" if ports else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE conn AS
        WITH net AS (
            SELECT e.* REPLACE (line_of_row(e.source_line, e.rowid) AS source_line),
                   e.src_port AS local_port, e.rowid AS erow  -- outbound only: the source is the local end
            FROM events e JOIN ip_scope s ON s.ip = e.remote_ip AND s.counted
            WHERE e.kind = 'network' AND coalesce(e.direction, 'outbound') = 'outbound'
              {_security_filter(con, "sysmon_net")}
              {port_filter}
        )
        SELECT pkey, host, time, remote_ip AS ip, remote_port AS port, protocol, image, "user", pid,
               norm_guid(process_guid) AS guid, source_file, source_line, source_record, local_port, erow
        FROM ({keyed_sql("net")})
    """)
    # the same connection read twice: same process, time and both ends (a new one has a new local port);
    # asking costs ~40 ms at 1 M events, rebuilding only when there are some
    same = "pkey, time, ip, port, protocol, local_port"
    if con.execute(f"SELECT count(*) - count(DISTINCT ({same})) FROM conn").fetchone()[0]:
        con.execute(f"CREATE OR REPLACE TEMP TABLE conn AS SELECT * FROM conn "
                    f"QUALIFY row_number() OVER (PARTITION BY {same} ORDER BY erow) = 1")
    # dropping the two helper columns is cheaper than copying the table without them (0.27 s against 0.36 s)
    con.execute("ALTER TABLE conn DROP COLUMN local_port")
    con.execute("ALTER TABLE conn DROP COLUMN erow")
