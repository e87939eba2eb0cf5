"""The embedded engine: prepare the tables every detection reads, run the detections, build findings.

    events (canonical) -> proc, conn, ctx (processes.py + scope + exclusions) -> detection SQL -> Finding

Scope and exclusions are decided in Python on *distinct* values (addresses, images, users...) and
joined back as small tables, so per-event work stays inside DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from stagehunt import exclusions, processes, scope, scoring
from stagehunt.config import Config
from stagehunt.detections import DETECTIONS, Detection
from stagehunt.findings import Finding
from stagehunt.store import EventStore
from stagehunt.tables import temp_table


class EngineError(RuntimeError):
    """The configured engine cannot run: not installed, cannot start, or cannot run a detection."""


def prepare(store: EventStore, cfg: Config) -> None:
    """Build proc, ip_scope, conn and ctx in the store's connection."""
    con = store.con
    processes.build(con)  # defines the macros (macros.py) too
    build_ip_scope(con, cfg)
    processes.build_connections(con, cfg.exclusions.ports)
    # per networked process: its context from its start event, else what its connections say
    con.execute("""
        CREATE OR REPLACE TEMP TABLE ctx AS
        WITH c AS (
            SELECT pkey, any_value(host) AS host, any_value(image) AS image, any_value("user") AS "user",
                   any_value(pid) AS pid, any_value(guid) AS guid
            FROM conn GROUP BY pkey
        )
        SELECT c.pkey, c.host, coalesce(p.image, c.image) AS image, e.command_line,
               coalesce(e."user", c."user") AS "user", coalesce(p.pid, c.pid) AS pid, coalesce(p.guid, c.guid) AS guid,
               e.parent_image, e.parent_command_line, p.parent_pid, p.parent_guid, p.parent_key, e.hashes,
               e.company, e.product, e.original_file_name, p.key IS NOT NULL AS context_known,
               p.time AS start_time, e.source_file AS start_file, line_of_row(e.source_line, e.rowid) AS start_line,
               e.source_record AS start_record, false AS excluded
        FROM c LEFT JOIN proc p ON p.key = c.pkey LEFT JOIN events e ON e.rowid = p.erow
    """)
    _mark_excluded(con, cfg)


# A dotted IPv4 address as inet_pton reads it (no leading zeros), and its value as an integer.
_DOTTED = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
_AS_INT = " + ".join(f"(string_split(ip, '.')[{i + 1}]::UBIGINT << {24 - 8 * i})" for i in range(4))


def build_ip_scope(con, cfg: Config) -> None:
    """`ip_scope(ip, counted)`: one row per distinct remote address of a network event. Dotted IPv4
    (nearly all traffic) is decided in SQL against the classifier's own IPv4 segments; anything else
    (IPv6, odd spellings) by the classifier in Python. Destination exclusions apply to counted ones."""
    classify = scope.classifier(cfg.scope)
    starts, values = classify.ipv4_segments()
    temp_table(con, "ipv4_segments", {"start": ("UBIGINT", starts), "counted": ("BOOLEAN", values)})
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _remote AS
        SELECT ip, regexp_full_match(ip, '{_DOTTED}') AS dotted
        FROM (SELECT DISTINCT remote_ip AS ip FROM events WHERE kind = 'network' AND remote_ip IS NOT NULL)
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ip_scope AS
        SELECT r.ip, s.counted FROM (SELECT ip, {_AS_INT} AS n FROM _remote WHERE dotted) r
        ASOF JOIN ipv4_segments s ON r.n >= s.start
    """)
    others = [r[0] for r in con.execute("SELECT ip FROM _remote WHERE NOT dotted").fetchall()]
    if others:
        temp_table(con, "_others", {"ip": ("VARCHAR", others),
                                    "counted": ("BOOLEAN", [classify.is_external(ip) for ip in others])})
        con.execute("INSERT INTO ip_scope SELECT * FROM _others")
    if cfg.exclusions.destinations:  # decided only for addresses that would count
        counted = [r[0] for r in con.execute("SELECT ip FROM ip_scope WHERE counted").fetchall()]
        dropped = sorted(exclusions.Exclusions(cfg.exclusions).excluded_destinations(counted))
        con.execute("UPDATE ip_scope SET counted = false WHERE ip IN (SELECT unnest(?::VARCHAR[]))", [dropped])


def _mark_excluded(con, cfg: Config) -> None:
    """Set ctx.excluded from the image, hash, user and host exclusions, decided on distinct values."""
    ex = cfg.exclusions
    images = [r[0] for r in con.execute("SELECT DISTINCT image FROM ctx WHERE image IS NOT NULL").fetchall()]
    bad_images = sorted(exclusions.Exclusions(ex).excluded_images(images))
    temp_table(con, "excluded_images", {"image": ("VARCHAR", bad_images)})
    # only the kinds of exclusion configured are tested (the hash one runs a regex over every Hashes field)
    tests = ["image IN (SELECT image FROM excluded_images)"] if bad_images else []
    params: list[list[str]] = []
    for test, values in (("lower(\"user\") IN (SELECT unnest(?::VARCHAR[]))", [u.lower() for u in ex.users]),
                         ("host IN (SELECT unnest(?::VARCHAR[]))", [h.lower() for h in ex.hosts]),
                         ("list_has_any(regexp_extract_all(lower(coalesce(hashes, '')), '=([0-9a-f]+)', 1), "
                          "?::VARCHAR[])", [h.lower() for h in ex.hashes])):
        if values:
            tests.append(test)
            params.append(values)
    if tests:
        con.execute(f"UPDATE ctx SET excluded = true WHERE {' OR '.join(tests)}", params)


def run(store: EventStore, cfg: Config, detections: list[str] | None = None,
        on_stage: Callable[[str], None] | None = None) -> list[Finding]:
    """Prepare, run each detection (on the configured engine), score; every finding, highest score first,
    suppressed ones last. `on_stage` is told what starts (a progress display: at 5 M events this takes
    ~10 s after the read)."""
    stage = on_stage or (lambda _: None)
    stage("building the process tree, scope and connections")
    prepare(store, cfg)
    kinds = {k for (k,) in store.con.execute("SELECT DISTINCT kind FROM events").fetchall()}
    # a detection whose event kinds are absent cannot fire, and is not run
    chosen = [DETECTIONS[d] for d in detections or list(DETECTIONS) if kinds.issuperset(DETECTIONS[d].needs)]
    if cfg.engine.name == "spark":
        from stagehunt import spark_engine  # pyspark is optional, and slow to import

        stage(f"running {len(chosen)} detections on Spark")
        results = spark_engine.rows(store, cfg, chosen)
    else:
        results = _duckdb_rows(store, cfg, chosen, stage)
    findings: list[Finding] = []
    for det, row in results:
        finding = det.build(row, cfg)
        finding.process_key = row.get("pkey") or row.get("desc_key")
        finding.earlier_key = row.get("anc_key") or row.get("wkey") or row.get("skey")
        findings.append(finding)
    stage(f"scoring {len(findings)} findings")
    return scoring.rank(store.con, findings, cfg)


def _duckdb_rows(store: EventStore, cfg: Config, detections: list[Detection],
                 stage: Callable[[str], None]) -> Iterator[tuple[Detection, dict]]:
    for det in detections:
        stage(f"running {det.id}")
        cur = store.con.execute(det.sql(cfg))
        cols = [c[0] for c in cur.description]
        for values in cur.fetchall():
            yield det, dict(zip(cols, values, strict=True))
