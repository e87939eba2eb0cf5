"""Real test inputs (tests/data/real) and faithful re-encodings of them for the EVTX and XML reader tests.

The re-encodings change only the container, never an event: Windows Event XML is rendered from the
real EVTX files by the `evtx` package (as `evtx_dump` prints it), syslog lines are rebuilt from the
real Azure Syslog rows, and a multi-chunk EVTX is the real files' chunks laid end to end.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
import struct
import sys
import zlib
from pathlib import Path
from types import ModuleType

import evtx
import orjson

REAL = Path(__file__).parent / "data" / "real"
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmark_module(name: str) -> ModuleType:
    """A module of benchmarks/ (a directory of scripts, not a package), e.g. evtx_corpus."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]
EVTX_DIR = REAL / "evtx-to-mitre"
EVTX_FILES = sorted(EVTX_DIR.glob("*.evtx"))
EVTX_EID3 = EVTX_DIR / "ID3-7-10-Suspicious DLL loaded (CME+Mimikatz).evtx"
AZURE_SYSLOG = REAL / "otrf" / "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"
AZURE_AUOMS = REAL / "otrf" / "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"
OTRF_CMSTP = REAL / "otrf" / "psh_cmstp_execution_bypassuac_2020-10-2201543213.sysmon-excerpt.jsonl"

HEADER, CHUNK = 4096, 65536


def evtx_xml_records(path: Path) -> list[str]:
    """Each record of an EVTX file as the evtx package renders it (XML declaration, namespace, indented)."""
    return [r["data"] for r in evtx.PyEvtxParser(str(path)).records()]


def without_declaration(xml: str) -> str:
    return xml.split("?>", 1)[1].strip() if xml.startswith("<?xml") else xml.strip()


def one_line(xml: str) -> str:
    """An indented <Event> on one line, as Get-WinEvent's ToXml() gives it (values keep their text)."""
    return re.sub(r">\s*\n\s*<", "><", without_declaration(xml))


def write_xml_document(src: Path, dest: Path) -> Path:
    """`<Events>` document with every record of `src`, one indented <Event> after another."""
    dest.write_text("<Events>\n" + "".join(without_declaration(x) + "\n" for x in evtx_xml_records(src))
                    + "</Events>\n", encoding="utf-8")
    return dest


def write_syslog(src: Path, dest: Path) -> Path:
    """Sysmon-for-Linux syslog lines (`May 11 18:10:20 UBUNTU5 sysmon: <Event>...`) from Azure Syslog rows."""
    lines = []
    for raw in src.read_bytes().splitlines():
        row = orjson.loads(raw)
        t = datetime.datetime.fromisoformat(row["EventTime"].replace("Z", "+00:00"))
        lines.append(f"{t:%b} {t.day:2d} {t:%H:%M:%S} {row['HostName']} {row['ProcessName']}: {row['SyslogMessage']}\n")
    dest.write_text("".join(lines), encoding="utf-8")
    return dest


def chunk_records(path: Path) -> int:
    """Records the (single) chunk of a real EVTX file holds, from its chunk header."""
    first, last = struct.unpack_from("<QQ", path.read_bytes(), HEADER + 8)
    return last - first + 1


def write_multichunk_evtx(dest: Path, copies: int = 1) -> tuple[Path, list[int]]:
    """One EVTX file holding the chunks of all real EVTX files (`copies` times over), header updated; returns it
    and the records per chunk."""
    blobs = [p.read_bytes() for p in EVTX_FILES] * copies
    head = bytearray(blobs[0][:HEADER])
    struct.pack_into("<QQ", head, 8, 0, len(blobs) - 1)  # first and last chunk number
    struct.pack_into("<H", head, 42, len(blobs))  # chunk count
    struct.pack_into("<I", head, 124, zlib.crc32(bytes(head[:120])))
    dest.write_bytes(bytes(head) + b"".join(b[HEADER:HEADER + CHUNK] for b in blobs))
    return dest, [chunk_records(p) for p in EVTX_FILES] * copies
