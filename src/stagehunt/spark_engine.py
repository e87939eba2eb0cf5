"""The second engine: the detections' statements run on Apache Spark (local mode, on loopback).

DuckDB still reads the telemetry and prepares the tables every detection reads (`proc`, `conn`, `ctx`:
process identity, scope, exclusions); they reach Spark as Parquet files, and each detection's own
statement, translated by `spark_sql`, runs there. Its rows are turned into findings by the same
`build` as on DuckDB, so both engines must give the same findings (tests/test_spark_engine.py).

Needs the `spark` extra (pyspark, sqlglot) and Java 17 or later.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stagehunt.config import Config
from stagehunt.detections import Detection
from stagehunt.engine import EngineError
from stagehunt.macros import spark_functions
from stagehunt.store import EventStore, _bytes

# What the detections read besides the prepared tables: the events of the kinds they read directly
# (process starts they join by rowid for a start's command line and evidence; file creations, process
# accesses), with a rowid column and their line numbers resolved.
_EXPORTS = {
    "proc": "SELECT * FROM proc",
    "conn": "SELECT * FROM conn",
    "ctx": "SELECT * FROM ctx",
    "events": "SELECT rowid AS rowid, * REPLACE (line_of_row(source_line, rowid) AS source_line) FROM events "
              "WHERE kind IN ('process_start', 'file_create', 'process_access')",
}
# line numbers arrive resolved, so Spark's line_of_row is the identity
_LINE_OF_ROW = ("CREATE OR REPLACE TEMPORARY FUNCTION line_of_row(line BIGINT, r BIGINT) "
                "RETURNS BIGINT RETURN line")

_QUIET_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
# pyspark runs as a shell, whose logger Spark would set to WARN, saying so on standard error
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


class SparkUnavailable(EngineError):
    """pyspark or sqlglot is not installed, or Spark could not start (no Java)."""


_INSTALL = "the Spark engine needs pyspark and sqlglot: pip install 'stagehunt[spark]' (and Java 17 or later)"


def _translator() -> Any:
    try:
        from stagehunt import spark_sql
    except ImportError as e:  # sqlglot
        raise SparkUnavailable(_INSTALL) from e
    return spark_sql


def unportable(detections: list[Detection], cfg: Config) -> dict[str, str]:
    """Detection id -> why its statement cannot run on Spark, for those that cannot."""
    translator = _translator()
    out = {}
    for det in detections:
        try:
            translator.to_spark(det.sql(cfg))
        except translator.UnportableSQL as e:
            out[det.id] = str(e)
    return out


def rows(store: EventStore, cfg: Config, detections: list[Detection]) -> Iterator[tuple[Detection, dict[str, Any]]]:
    """Each detection's result rows, computed by Spark over the tables prepared in the store."""
    to_spark = _translator().to_spark
    statements = [(det, to_spark(det.sql(cfg))) for det in detections]  # refuse before starting a JVM
    spark = session(cfg)
    folder = Path(store.tmpdir) / "spark"
    folder.mkdir(exist_ok=True)
    for name, select in _EXPORTS.items():
        path = folder / f"{name}.parquet"
        store.con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
        spark.read.parquet(str(path)).createOrReplaceTempView(name)
    for statement in [*spark_functions(), _LINE_OF_ROW]:
        spark.sql(statement)
    for det, sql in statements:
        for row in spark.sql(sql).collect():
            yield det, row.asDict(recursive=True)


_session = None


def session(cfg: Config) -> Any:
    """The process's Spark session, started on first use with this configuration's threads and memory:
    a JVM on loopback, UTC, quiet logs, no UI, its scratch space removed at exit."""
    global _session
    if _session is not None:
        return _session
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise SparkUnavailable(_INSTALL) from e
    scratch = tempfile.mkdtemp(prefix="stagehunt-spark-")
    atexit.register(shutil.rmtree, scratch, True)
    log4j = Path(scratch) / "log4j2-quiet.properties"
    log4j.write_text(_QUIET_LOG4J)
    threads = cfg.engine.threads or os.cpu_count() or 1
    heap_mb = max(512, _bytes(cfg.engine.memory_limit) // 2**20)
    builder = (SparkSession.builder.master(f"local[{threads}]").appName("stagehunt")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", f"{heap_mb}m")
               .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")  # DuckDB's naive UTC times
               .config("spark.sql.shuffle.partitions", str(max(2, threads)))
               .config("spark.local.dir", str(scratch)))
    # The JVM inherits standard error when it starts and notes its modules there: it gets a log file
    # instead, quoted if it does not start.
    log = Path(scratch) / "spark.log"
    saved = os.dup(2)
    try:
        with open(log, "wb") as f:
            os.dup2(f.fileno(), 2)
        _session = builder.getOrCreate()
    except Exception as e:  # no Java, or the JVM could not start
        lines = [*log.read_text(errors="replace").splitlines(), *str(e).splitlines(), type(e).__name__]
        first = next(x for x in lines if x.strip() and "incubator" not in x)
        raise SparkUnavailable(f"Spark could not start: {first}") from e
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    _session.sparkContext.setLogLevel("ERROR")
    return _session
