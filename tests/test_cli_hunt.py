"""`stagehunt hunt` as a user runs it: the quick start, every output, the flags, the exit codes."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
REAL = ROOT / "tests" / "data" / "real" / "otrf"


def hunt(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stagehunt.cli", "hunt", *args], capture_output=True,
                          input=stdin, cwd=ROOT, env=env)


def test_quick_start_finds_the_sample_attack():
    res = hunt(str(EXAMPLES))
    out = res.stdout.decode()
    assert res.returncode == 0
    assert "multi_stage_c2" in out and "parent_child_handoff" in out and "powershell.exe" in out
    assert "2 finding(s)" in res.stderr.decode()


def test_a_pipe_gets_the_wide_table_as_a_file_does(tmp_path):
    """`stagehunt hunt logs/ | less` or `| grep`: one row per finding, as `-o FILE` writes, not blocks
    folded to the 80 columns Rich assumes without a terminal."""
    piped = hunt(str(EXAMPLES), env={k: v for k, v in os.environ.items() if k != "COLUMNS"}).stdout.decode()
    hunt(str(EXAMPLES), "-o", str(tmp_path / "out.txt"))
    assert piped == (tmp_path / "out.txt").read_text(encoding="utf-8")
    row = next(line for line in piped.splitlines() if "multi_stage_c2" in line)
    assert "powershell.exe" in row and "185.220.101.33" in row and "fin-ws-042.corp.example" in row
    assert any(line.startswith("#1 powershell.exe reached 2 distinct external IPs") for line in piped.splitlines())


def test_jsonl_to_a_file_carries_the_contract(tmp_path):
    out = tmp_path / "f.jsonl"
    res = hunt(str(EXAMPLES), "-O", "jsonl", "-o", str(out))
    assert res.returncode == 0 and res.stdout == b""
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert {r["detection_type"] for r in rows} == {"multi_stage_c2", "parent_child_handoff"}
    for r in rows:
        assert r["technique"] == "T1104" and r["first_contact"].endswith("Z") and r["evidence"]
        assert all(e["file"].endswith("sysmon-two-stage-c2.jsonl") and e["line"] for e in r["evidence"])
        assert 0 <= r["score"] <= 100 and r["reasons"]


def test_csv_and_ocsf_outputs():
    rows = list(csv.DictReader(io.StringIO(hunt(str(EXAMPLES), "-O", "csv").stdout.decode())))
    assert len(rows) == 2 and {r["detection_type"] for r in rows} == {"multi_stage_c2", "parent_child_handoff"}
    ocsf = [orjson.loads(x) for x in hunt(str(EXAMPLES), "-O", "ocsf").stdout.splitlines()]
    assert [o["class_uid"] for o in ocsf] == [2004, 2004]


def test_flags_change_the_detection():
    assert hunt(str(EXAMPLES), "--min-ips", "3", "-d", "multi_stage_c2", "-O", "jsonl").stdout == b""
    one = hunt(str(EXAMPLES), "-d", "multi_stage_c2", "-O", "jsonl").stdout.splitlines()
    assert len(one) == 1
    # the sample's two stages are 31 minutes apart: a 10-minute window does not hold both
    assert hunt(str(EXAMPLES), "-d", "multi_stage_c2", "--window", "10m", "-O", "jsonl").stdout == b""
    # ... and they straddle midnight: the seed's fixed 24 h buckets cut them apart
    assert hunt(str(EXAMPLES), "-d", "multi_stage_c2", "--window-mode", "tumbling", "-O", "jsonl").stdout == b""


def test_internal_scope_flag_finds_the_covenant_handoff():
    path = str(REAL / "covenant_dcom_iertutil_dll_hijack_2020-10-09183000.sysmon-excerpt.jsonl")
    without = hunt(path, "-d", "parent_child_handoff", "-O", "jsonl").stdout
    with_internal = hunt(path, "-d", "parent_child_handoff", "--count-internal", "-O", "jsonl").stdout
    assert without == b"" and orjson.loads(with_internal)["new_ips"] == ["10.10.10.5"]


def test_stdin_and_min_score(tmp_path):
    data = (EXAMPLES / "sysmon-two-stage-c2.jsonl").read_bytes()
    res = hunt("-", "-O", "jsonl", stdin=data)
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 2
    assert hunt("-", "-O", "jsonl", "--min-score", "101", stdin=data).returncode == 2  # out of range: usage


@pytest.mark.parametrize(("args", "code"), [
    (["nonexistent.jsonl"], 2), (["examples", "-O", "xml"], 2), (["examples", "--window", "soon"], 2),
    (["examples", "-d", "nope"], 2), (["examples", "--window-mode", "hopping"], 2)])
def test_usage_errors_are_one_line_and_exit_2(args, code):
    res = hunt(*args)
    err = res.stderr.decode()
    assert res.returncode == code and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_strict_fails_on_a_bad_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes((EXAMPLES / "sysmon-two-stage-c2.jsonl").read_bytes() + b'{"EventID": 3, "Image": \n')
    assert hunt(str(bad), "-O", "jsonl").returncode == 0
    res = hunt(str(bad), "-O", "jsonl", "--strict")
    assert res.returncode == 2 and f"{bad}:19" in res.stderr.decode()


def _in_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr; (exit code, everything it wrote)."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "stagehunt.cli", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    out = bytearray()
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=120), out.decode(errors="replace")


def test_on_a_terminal_reading_shows_a_progress_bar_and_still_finds(tmp_path):
    """The progress path (a bar, DuckDB's progress polled while a file loads) runs only on a terminal."""
    from builders import T0, conn, guid, minutes, start, write

    g = guid()
    image = r"C:\Users\bob\AppData\Local\Temp\upd.exe"
    evs = [start(T0, image, 9, pg=g)]
    # big enough that the load outlasts a few polls of DuckDB's progress (every 0.25 s)
    evs += [conn(T0 + minutes(i / 1000), r"C:\Tools\agent.exe", 7, "10.1.1.1") for i in range(250_000)]
    evs += [conn(T0 + minutes(n), image, 9, ip, pg=g) for n, ip in ((1, "185.220.101.33"), (2, "45.137.21.9"))]
    write(tmp_path / "big.jsonl", evs)
    code, out = _in_a_terminal(["hunt", "big.jsonl"], tmp_path)
    assert code == 0, out
    assert "reading" in out and "big.jsonl" in out  # the bar, naming the file
    assert "hunting: " in out  # then a spinner naming the stage after the read (silent before)
    assert "upd.exe" in out and "1 finding(s) from 250003 event(s)" in out, out[-2000:]
    assert "Traceback" not in out and "Exception in thread" not in out, out[-2000:]


def test_a_memory_limit_too_small_for_the_input_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('[engine]\nmemory_limit = "4MB"\n')
    res = hunt(str(EXAMPLES), "--config", str(cfg))
    err = res.stderr.decode().strip()
    assert res.returncode == 2 and res.stdout == b""
    assert len(err.splitlines()) == 1 and err.startswith("stagehunt: error: out of memory")
    assert "memory_limit" in err and "[engine]" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [[], ["hunt"], ["inspect"], ["export"], ["config"], ["config", "show"],
                                     ["simulate"], ["validate"], ["version"]])
def test_help_names_what_each_option_takes(command: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "stagehunt.cli", *command, "--help"], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0
    # a value is named for what it is (FILE, DURATION, CIDR...), never by a Python type, and a flag
    # (--json, --strict, --help) shows no value at all: `--json <bool>` reads as if it took one
    for python_type in ("<bool>", "<str>", "<int>", "<list[str]>", "<path>", "<file>", "<float>"):
        assert python_type not in res.stdout, (command, python_type)
    assert "--help" in res.stdout.split("Options")[1]
    if command in (["hunt"], ["inspect"]):
        assert re.search(r"\*\s+PATH\s+Files, directories", res.stdout), res.stdout


@pytest.mark.parametrize("command", [["hunt"], ["inspect"], ["export"], ["config", "show"], ["simulate"],
                                     ["validate"]])
def test_the_readme_documents_every_option(command: list[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "stagehunt.cli", *command, "--help"], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "250"})
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", res.stdout.split("Options")[1])) - {"--help"}
    assert options and not sorted(o for o in options if o not in readme), command


@pytest.mark.parametrize("command", [["hunt", str(EXAMPLES), "-O", "jsonl"], ["export", "-t", "sigma"]])
def test_an_output_file_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path, command: list[str]) -> None:
    target = tmp_path / "no" / "such" / "folder" / "out.txt"
    res = subprocess.run([sys.executable, "-m", "stagehunt.cli", *command, "-o", str(target)], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"stagehunt: error: cannot write {target}: folder {target.parent} "
                                       "does not exist"]  # one line, and no hunt ran first
    assert not target.parent.exists()


# A DuckDB statement that runs for a few seconds here (200 M rows) and for minutes (100 G rows).
_SECONDS = "SELECT count(*) FROM range(200000000) a WHERE a.range % 7 = 3"
_MINUTES = "SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3"


def test_ctrl_c_inside_a_duckdb_statement_is_interrupted_not_an_internal_error():
    """DuckDB's client turns SIGINT during a statement into RuntimeError("Query interrupted"): it was
    reported as "internal error" with exit 1. (Now and then DuckDB misses the signal; Python then raises
    KeyboardInterrupt when the statement ends, hence a statement that ends.)"""
    code = ("import sys, duckdb, typer\nfrom stagehunt.cli import guarded\ncon = duckdb.connect()\n"
            "con.execute('SET enable_progress_bar = false')\nprint('ready', flush=True)\n"
            f"try:\n    guarded(lambda: con.execute({_SECONDS!r}).fetchall())\n"
            "except typer.Exit as e:\n    sys.exit(e.exit_code)\n")
    # SIGINT as a terminal's Ctrl-C delivers it (a test runner started in the background may ignore it)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # inside the statement
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=300)
    assert (p.returncode, stderr.strip()) == (130, "stagehunt: error: interrupted")


def test_an_interrupted_statement_is_interrupted_not_an_internal_error():
    import duckdb
    import typer

    from stagehunt.cli import guarded

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    threading.Timer(0.3, con.interrupt).start()
    with pytest.raises(typer.Exit) as e:
        guarded(lambda: con.execute(_MINUTES).fetchall())
    assert e.value.exit_code == 130


def test_a_file_name_that_is_not_utf8_is_read_and_cited_escaped(tmp_path):
    """Linux file names may hold any bytes; such a name failed every record ("cannot encode str as UTF-8")."""
    from stagehunt import hunt

    odd = tmp_path / os.fsdecode(b"sysmon-\xff\xfe.jsonl")
    odd.write_bytes((EXAMPLES / "sysmon-two-stage-c2.jsonl").read_bytes())
    findings = hunt([odd])
    assert len(findings) == 2
    cited = {e.file for f in findings for e in f.evidence}
    assert cited == {str(tmp_path / "sysmon-\\xff\\xfe.jsonl")}
    res = subprocess.run([sys.executable, "-m", "stagehunt.cli", "hunt", str(tmp_path), "-O", "jsonl"],
                         capture_output=True)
    assert res.returncode == 0 and res.stdout.count(b"\n") == 2 and b"sysmon-\\\\xff\\\\xfe.jsonl" in res.stdout


@pytest.mark.parametrize("command", [["hunt", str(EXAMPLES)], ["hunt", str(EXAMPLES), "-O", "csv"],
                                     ["inspect", str(EXAMPLES)], ["export", "-t", "sigma"], ["config", "show"]])
def test_a_closed_pipe_stops_quietly_and_a_full_disk_is_one_line(command: list[str]) -> None:
    """`| head` closing early: Rich's table exited 1 on its own. A full disk was an "internal error"."""
    p = subprocess.Popen([sys.executable, "-m", "stagehunt.cli", *command], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # closed before the first write, so every write meets a broken pipe
    stderr = p.communicate(timeout=120)[1].decode()
    assert p.returncode == 0 and "rror" not in stderr and "Traceback" not in stderr
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "stagehunt.cli", *command], stdout=full, stderr=subprocess.PIPE,
                             text=True)
    assert (res.returncode, res.stderr.strip()) == (2, "stagehunt: error: cannot write the output: "
                                                       "No space left on device")


def test_a_pipe_is_read_like_standard_input(tmp_path):
    """`stagehunt hunt <(zcat logs.gz)` names a pipe (/dev/fd/63): it was "no such file or directory"."""
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    text = (EXAMPLES / "sysmon-two-stage-c2.jsonl").read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as w:
            w.write(text)

    threading.Thread(target=feed, daemon=True).start()
    res = subprocess.run([sys.executable, "-m", "stagehunt.cli", "hunt", str(fifo), "-O", "jsonl"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    findings = [orjson.loads(line) for line in res.stdout.splitlines()]
    assert len(findings) == 2 and {e["file"] for f in findings for e in f["evidence"]} == {str(fifo)}


def test_overlapping_exports_count_each_connection_once(tmp_path):
    """The same events read from two files (a collector's export and the host's own, or a copy beside its
    .gz) were counted twice: connection_count doubled and every connection cited twice."""
    import gzip

    from stagehunt import hunt

    text = (EXAMPLES / "sysmon-two-stage-c2.jsonl").read_bytes()
    (tmp_path / "a-collector.jsonl").write_bytes(text)
    (tmp_path / "b-host.jsonl.gz").write_bytes(gzip.compress(text))

    def shape(findings):
        return sorted((f.detection_type, f.connection_count, tuple(f.ip_list), len(f.evidence),
                       tuple(e.line for e in f.evidence)) for f in findings)

    once, twice = hunt([EXAMPLES / "sysmon-two-stage-c2.jsonl"]), hunt([tmp_path])
    assert shape(twice) == shape(once) and {f.connection_count for f in once} == {3, 5}
    assert {e.file for f in twice for e in f.evidence if e.kind == "network"} == {str(tmp_path / "a-collector.jsonl")}
    # within one file too (at-least-once delivery): each line twice in a row; the first of each pair cited
    doubled = tmp_path / "doubled" / "siem.jsonl"
    doubled.parent.mkdir()
    doubled.write_bytes(b"".join(line + line for line in text.splitlines(keepends=True)))
    again = hunt([doubled])
    assert [s[:4] for s in shape(again)] == [s[:4] for s in shape(once)]
    assert sorted(tuple((ln + 1) // 2 for ln in s[4]) for s in shape(again)) == sorted(s[4] for s in shape(once))
