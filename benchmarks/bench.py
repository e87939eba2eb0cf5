"""Benchmarks: reading into the canonical table, hunting, and a bare-DuckDB baseline, on one corpus.

Each measurement runs in a fresh subprocess (so peak RSS is its own), several times; the summary
gives medians, events/s and the ratio against the baseline measured in the same run.

    python benchmarks/bench.py                    # 1 M events, 3 runs each
    python benchmarks/bench.py --events 5000000 --runs 1 --only hunt
    python benchmarks/bench.py --evtx             # EVTX records/s: ~250 MiB of dense chunks (evtx_corpus.py)
    python benchmarks/bench.py --evtx-sparse      # the same size of the real, sparse chunks laid end to end
    python benchmarks/bench.py --events 200000 --files 1000   # many small files: the per-file cost
    python benchmarks/bench.py --evtx-files 300   # 300 small EVTX files

The dense EVTX file fills each real chunk with copies of its records (~60 per chunk, as many as these Sysmon
records fit in 64 KiB), as a live log does; the sparse one repeats the real test files' chunks (3-15 records
each), so its records/s mostly measures per-chunk cost. Both hold 4000 chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The seed's aggregation and nothing else: EID 3, grouped, distinct destinations >= 2. No scope
# classification, no process context, no evidence: the least any engine has to do on this file.
BASELINE = """
import duckdb, sys
con = duckdb.connect()
n = con.execute('''
  SELECT count(*) FROM (
    SELECT Hostname, "User", Image, count(DISTINCT DestinationIp) AS n
    FROM read_json(?, format='newline_delimited',
                   columns={'EventID': 'VARCHAR', 'Hostname': 'VARCHAR', 'User': 'VARCHAR', 'Image': 'VARCHAR',
                            'DestinationIp': 'VARCHAR', 'DestinationPort': 'VARCHAR', 'UtcTime': 'VARCHAR'})
    WHERE EventID = '3'
    GROUP BY Hostname, "User", Image, time_bucket(INTERVAL 1 DAY, TRY_CAST(UtcTime AS TIMESTAMP))
    HAVING count(DISTINCT DestinationIp) >= 2)''', [sys.argv[1]]).fetchone()[0]
print(n)
"""

READ = """
import sys
from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.store import EventStore
with EventStore() as s:
    sources.load(s, list(sources.expand(sys.argv[1:], s.tmpdir)), 'auto', Diagnostics())
    print(s.count())
"""

HUNT = """
import sys, time
import stagehunt
from stagehunt import engine, scoring
spent = [0.0]
rank = scoring.rank
def timed_rank(*a, **k):  # how much of the hunt is scoring (issue 6: at most 20 %)
    t = time.perf_counter()
    try:
        return rank(*a, **k)
    finally:
        spent[0] += time.perf_counter() - t
engine.scoring.rank = timed_rank
t = time.perf_counter()
n = len(stagehunt.hunt(sys.argv[1:]))
print(n, f"scoring {spent[0]:.2f}s of {time.perf_counter() - t:.2f}s")
"""

def run_once(code: str, args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of `code` run in a fresh interpreter with `args`."""
    wrapper = (
        "import resource, sys, time\n"
        f"sys.argv = ['bench', *{args!r}]\n"
        "t = time.perf_counter()\n"
        f"exec(compile({code!r}, 'bench', 'exec'))\n"
        "sys.stdout.flush()\n"
        "print('@@', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=True,
                          cwd=ROOT)
    line = [x for x in proc.stderr.splitlines() if x.startswith("@@")][-1].split()
    return float(line[1]), float(line[2]), proc.stdout.strip()


def measure(name: str, code: str, args: list[str], runs: int) -> dict:
    times, rss, out = [], [], ""
    for _ in range(runs):
        t, m, out = run_once(code, args)
        times.append(t)
        rss.append(m)
    return {"name": name, "median_s": statistics.median(times), "runs_s": times, "peak_rss_mib": max(rss),
            "output": out}


def corpus(events: int, workdir: Path) -> Path:
    path = workdir / f"corpus-{events}.jsonl"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "generate_corpus.py"), "--events", str(events), "-o", str(path)],
                       check=True)
    return path


def split_corpus(events: int, files: int, workdir: Path) -> Path:
    """A directory holding the first `events` events of the corpus as `files` JSON-lines files of equal size
    (per-host exports, rotated logs), for the per-file cost of reading."""
    dest = workdir / f"corpus-{events}-in-{files}-files"
    if not dest.exists():
        part = workdir / (dest.name + ".part")  # a cut-short split is never taken for the directory
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir()
        per = -(-events // files)
        with open(corpus(max(events, 1_000_000), workdir), "rb") as src:
            for k in range(files):
                lines = [line for _, line in zip(range(per), src, strict=False)]
                (part / f"part-{k:05d}.jsonl").write_bytes(b"".join(lines))
        part.rename(dest)
    return dest


SHAPES = {
    "cut-last-line": "JSON lines whose last line is cut short (rotation, a copy of a live log)",
    "bad-line": "JSON lines with one corrupt line in the middle",
    "array": "one JSON array of the events (Splunk, Azure, PowerShell exports)",
    "pretty": "pretty-printed objects one after another (jq .)",
}


def shaped_corpus(events: int, shape: str, workdir: Path) -> Path:
    """The corpus's first `events` events laid out as `shape` (see SHAPES), kept in `workdir`."""
    dest = workdir / f"corpus-{events}-{shape}.json"
    if dest.exists():
        return dest
    import orjson

    part = workdir / (dest.name + ".part")  # a cut-short build is never taken for the file
    with open(corpus(max(events, 1_000_000), workdir), "rb") as src, open(part, "wb") as out:
        lines = (line.rstrip(b"\n") for _, line in zip(range(events), src, strict=False))
        if shape == "array":
            out.write(b"[")
            for i, line in enumerate(lines):
                out.write((b",\n" if i else b"") + line)
            out.write(b"]\n")
        elif shape == "pretty":
            for line in lines:
                out.write(orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2) + b"\n")
        else:
            first = b""
            for i, line in enumerate(lines):
                first = first or line
                out.write((line[: len(line) // 3] if shape == "bad-line" and i == events // 2 else line) + b"\n")
            if shape == "cut-last-line":
                out.write(first[: len(first) // 2])
    part.rename(dest)
    return dest


def evtx_directory(files: int, workdir: Path) -> Path:
    """A directory of `files` small EVTX files: the real test files (2-15 records each) copied round-robin,
    as a collection of attack samples or per-host logs holds them."""
    sys.path.insert(0, str(ROOT / "tests"))
    from realdata import EVTX_FILES

    dest = workdir / f"evtx-{files}-files"
    if not dest.exists():
        part = workdir / (dest.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir()
        for k in range(files):
            src = EVTX_FILES[k % len(EVTX_FILES)]
            (part / f"{k:05d}-{src.name}").write_bytes(src.read_bytes())
        part.rename(dest)
    return dest


def evtx_input(workdir: Path, chunks: int, sparse: bool = False) -> list[str]:
    """One EVTX file of `chunks` 64 KiB chunks, kept in `workdir` between runs.

    Dense (default): the real test files' chunks filled with copies of their records (evtx_corpus.py), so
    records/s measures reading records as in a real log. Sparse: the real chunks laid end to end as they are
    (the builder the reader tests use), 3-15 records each, so per-chunk cost dominates."""
    if sparse:
        sys.path.insert(0, str(ROOT / "tests"))
        from realdata import EVTX_FILES, write_multichunk_evtx

        copies = chunks // len(EVTX_FILES)
        dest = workdir / f"bench-{copies}.evtx"
        if not dest.exists():
            write_multichunk_evtx(dest, copies)
        return [str(dest)]
    from evtx_corpus import write_dense_evtx

    dest = workdir / f"bench-dense-{chunks}.evtx"
    if not dest.exists():
        part = dest.with_name(dest.name + ".part")  # a cut-short build is never taken for the file
        write_dense_evtx(part, chunks)
        part.replace(dest)
    return [str(dest)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="corpus size (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement; medians are reported")
    ap.add_argument("--only", choices=["baseline", "read", "hunt"], action="append",
                    help="run only these measurements (repeatable)")
    ap.add_argument("--evtx", action="store_true", help="measure EVTX reading instead (dense chunks, ~250 MiB)")
    ap.add_argument("--evtx-sparse", action="store_true",
                    help="measure EVTX reading on the real, sparse chunks laid end to end (same size)")
    ap.add_argument("--files", type=int, metavar="N",
                    help="measure reading instead: --events events split into N files of one directory")
    ap.add_argument("--evtx-files", type=int, metavar="N",
                    help="measure reading instead: a directory of N small EVTX files (copies of the real ones)")
    ap.add_argument("--shape", choices=sorted(SHAPES),
                    help="measure reading instead: the corpus laid out otherwise (" +
                    "; ".join(f"{k}: {v}" for k, v in SHAPES.items()) + "), against clean JSON lines")
    ap.add_argument("--workdir", default=os.environ.get("STAGEHUNT_BENCH_DIR", tempfile.gettempdir()),
                    help="where the corpus is generated and kept between runs")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.evtx or args.evtx_sparse:
        chunks = 4000
        files = evtx_input(work, chunks, sparse=args.evtx_sparse)
        r = measure("read-evtx", READ, files, args.runs)
        records = int(r["output"])
        kind = "sparse" if args.evtx_sparse else "dense"
        print(f"EVTX ({kind}): {records} records in one {Path(files[0]).stat().st_size >> 20} MiB file "
              f"({records / chunks:.1f} per chunk), median {r['median_s']:.2f} s -> "
              f"{records / r['median_s']:,.0f} records/s, peak RSS {r['peak_rss_mib']:.0f} MiB ({machine})")
        return
    if args.evtx_files:
        directory = evtx_directory(args.evtx_files, work)
        r = measure("read-evtx-files", READ, [str(directory)], args.runs)
        print(f"read {args.evtx_files} EVTX files: {int(r['output']):,} records, median {r['median_s']:.2f} s of "
              f"{args.runs} -> {args.evtx_files / r['median_s']:,.0f} files/s, peak RSS {r['peak_rss_mib']:.0f} MiB "
              f"({machine})")
        return
    if args.files:
        directory = split_corpus(args.events, args.files, work)
        r = measure("read-files", READ, [str(directory)], args.runs)
        print(f"read {args.files} files: {args.events:,} events, median {r['median_s']:.2f} s of {args.runs} -> "
              f"{args.events / r['median_s']:,.0f} events/s, {args.files / r['median_s']:,.0f} files/s, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB [output {r['output']}] ({machine})")
        return
    if args.shape:
        clean = measure("read", READ, [str(corpus(args.events, work))], args.runs)
        r = measure("read-shaped", READ, [str(shaped_corpus(args.events, args.shape, work))], args.runs)
        print(f"read {args.shape}: {args.events:,} events, median {r['median_s']:.2f} s of {args.runs} -> "
              f"{args.events / r['median_s']:,.0f} events/s, peak RSS {r['peak_rss_mib']:.0f} MiB, "
              f"{r['median_s'] / clean['median_s']:.2f}x clean JSON lines ({clean['median_s']:.2f} s, "
              f"{clean['peak_rss_mib']:.0f} MiB) [output {r['output']}] ({machine})")
        return
    path = corpus(args.events, work)
    results = {}
    for name, code in (("baseline", BASELINE), ("read", READ), ("hunt", HUNT)):
        if args.only and name not in args.only:
            continue
        results[name] = measure(name, code, [str(path)], args.runs)
    base = results.get("baseline")
    for name, r in results.items():
        ratio = f", {r['median_s'] / base['median_s']:.2f}x baseline" if base and name != "baseline" else ""
        print(f"{name}: {args.events:,} events, median {r['median_s']:.2f} s of {len(r['runs_s'])} -> "
              f"{args.events / r['median_s']:,.0f} events/s, peak RSS {r['peak_rss_mib']:.0f} MiB{ratio} "
              f"[output {r['output']}] ({machine})")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
