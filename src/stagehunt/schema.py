"""The canonical event model: one table, one row per event, whatever the input format.

Every reader ends in these columns; detections read only these. Times are UTC (naive TIMESTAMP
holding UTC). Rows keep their origin (file, line or record) so that findings can cite evidence.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What an event says happened; the detections care about these five."""

    PROCESS_START = "process_start"
    NETWORK = "network"
    FILE_CREATE = "file_create"
    PROCESS_ACCESS = "process_access"
    DNS = "dns"
    OTHER = "other"  # kept so `inspect` can count every event id; detections ignore it


# (column, DuckDB type, meaning). Order is the table's column order.
COLUMNS: list[tuple[str, str, str]] = [
    ("kind", "VARCHAR", "process_start | network | file_create | process_access | dns | other"),
    ("provider", "VARCHAR", "sysmon | sysmon-linux | security | auditd"),
    ("event_id", "INTEGER", "source event id (Sysmon EID, Security 4688/5156, auditd syscall number)"),
    ("time", "TIMESTAMP", "event time, UTC (Sysmon UtcTime, else the system time)"),
    ("host", "VARCHAR", "originating host, lower case"),
    ("process_guid", "VARCHAR", "ProcessGuid (for process access: the source process)"),
    ("pid", "BIGINT", "process id"),
    ("image", "VARCHAR", "process image path as logged"),
    ("command_line", "VARCHAR", "command line (process start only)"),
    ("user", "VARCHAR", "user"),
    ("parent_guid", "VARCHAR", "ParentProcessGuid"),
    ("parent_pid", "BIGINT", "parent process id"),
    ("parent_image", "VARCHAR", "parent image"),
    ("parent_command_line", "VARCHAR", "parent command line"),
    ("hashes", "VARCHAR", "Sysmon Hashes string (ALGO=hex,...)"),
    ("company", "VARCHAR", "PE metadata: company"),
    ("product", "VARCHAR", "PE metadata: product"),
    ("original_file_name", "VARCHAR", "PE metadata: original file name"),
    ("protocol", "VARCHAR", "tcp | udp | ..."),
    ("direction", "VARCHAR", "outbound | inbound (network events)"),
    ("src_ip", "VARCHAR", "source address as logged, canonical text form"),
    ("src_port", "INTEGER", "source port"),
    ("dst_ip", "VARCHAR", "destination address as logged, canonical text form"),
    ("dst_port", "INTEGER", "destination port"),
    ("dst_hostname", "VARCHAR", "DestinationHostname when logged"),
    ("remote_ip", "VARCHAR", "the far end: dst_ip when outbound, src_ip when inbound"),
    ("remote_port", "INTEGER", "the far end's port"),
    ("target_filename", "VARCHAR", "file create: the file written"),
    ("target_guid", "VARCHAR", "process access: target ProcessGuid"),
    ("target_pid", "BIGINT", "process access: target pid"),
    ("target_image", "VARCHAR", "process access: target image"),
    ("granted_access", "VARCHAR", "process access: GrantedAccess mask (hex text)"),
    ("query_name", "VARCHAR", "DNS query name"),
    ("query_results", "VARCHAR", "DNS answers as logged (;-separated)"),
    ("source_file", "VARCHAR", "file the event came from (archive!member for containers)"),
    ("source_line", "BIGINT", "1-based line number in source_file (text formats)"),
    ("source_record", "BIGINT", "record number (EVTX record id, index in a JSON array)"),
]

COLUMN_NAMES: list[str] = [c for c, _, _ in COLUMNS]


def create_table_sql(name: str = "events") -> str:
    cols = ",\n  ".join(f'"{c}" {t}' for c, t, _ in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {name} (\n  {cols}\n)"
