"""JSON dialects: how each JSON shape maps onto the canonical columns, as DuckDB SQL.

A dialect is data: the keys to read (DuckDB `read_json` column types, nested where the JSON is
nested) and, per raw field, the SQL expression that extracts it. `canonical_sql` turns the raw
fields into canonical columns the same way for every dialect, so the quirks (both UtcTime
spellings, boolean or string `Initiated`, hex pids, Sumo event-id strings) are handled once.
Non-JSON readers (EVTX, XML, syslog) emit the `flat` dialect, so they share this mapping too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Raw fields every dialect provides (as VARCHAR); missing ones are NULL.
RAW_FIELDS = [
    "channel", "eid", "utc_time", "sys_time", "host", "process_guid", "pid", "image", "command_line", "user",
    "parent_guid", "parent_pid", "parent_image", "parent_command_line", "hashes", "company", "product",
    "original_file_name", "protocol", "initiated", "src_ip", "src_port", "dst_ip", "dst_port", "dst_hostname",
    "target_filename", "target_guid", "target_pid", "target_image", "granted_access", "query_name",
    "query_results",
]


@dataclass(frozen=True)
class Dialect:
    name: str
    description: str
    columns: dict[str, str]  # JSON key -> DuckDB type, for read_json(columns=...)
    fields: dict[str, str]  # raw field -> SQL over those columns (and over `lets`)
    lets: dict[str, str] = field(default_factory=dict)  # helper columns computed once per row

    def columns_sql(self) -> str:
        return "{" + ", ".join(f"'{_sq(k)}': '{v}'" for k, v in self.columns.items()) + "}"

    def raw_select_sql(self) -> str:
        return ", ".join(f"CAST({self.fields[f]} AS VARCHAR) AS {f}" if f in self.fields else f"NULL::VARCHAR AS {f}"
                         for f in RAW_FIELDS)

    def lets_sql(self) -> str:
        return "".join(f", {expr} AS {name}" for name, expr in self.lets.items())


def _sq(s: str) -> str:
    return s.replace("'", "''")


def _q(key: str) -> str:
    return '"' + key.replace('"', '""') + '"'


# Sysmon EventData names (Windows and Linux share them) -> raw fields.
SYSMON_KEYS: dict[str, list[str]] = {
    "utc_time": ["UtcTime"],
    "process_guid": ["ProcessGuid", "SourceProcessGUID"],
    "pid": ["ProcessId", "SourceProcessId"],
    "image": ["Image", "SourceImage"],
    "command_line": ["CommandLine"],
    "user": ["User", "SourceUser"],
    "parent_guid": ["ParentProcessGuid"],
    "parent_pid": ["ParentProcessId"],
    "parent_image": ["ParentImage"],
    "parent_command_line": ["ParentCommandLine"],
    "hashes": ["Hashes"],
    "company": ["Company"],
    "product": ["Product"],
    "original_file_name": ["OriginalFileName"],
    "protocol": ["Protocol"],
    "initiated": ["Initiated"],
    "src_ip": ["SourceIp"],
    "src_port": ["SourcePort"],
    "dst_ip": ["DestinationIp"],
    "dst_port": ["DestinationPort"],
    "dst_hostname": ["DestinationHostname"],
    "target_filename": ["TargetFilename"],
    "target_guid": ["TargetProcessGUID"],
    "target_pid": ["TargetProcessId"],
    "target_image": ["TargetImage"],
    "granted_access": ["GrantedAccess"],
    "query_name": ["QueryName"],
    "query_results": ["QueryResults"],
}

# Windows Security 4688 / 5156 names (flat exports) -> raw fields, used after the Sysmon ones.
SECURITY_KEYS: dict[str, list[str]] = {
    "pid": ["NewProcessId"],  # 4688: NewProcessId is the new process; ProcessId its creator
    "image": ["NewProcessName", "Application"],
    "parent_image": ["ParentProcessName"],
    "user": ["TargetUserName"],
    "src_ip": ["SourceAddress"],
    "dst_ip": ["DestAddress"],
    "dst_port": ["DestPort"],
    "initiated": ["Direction"],
}


def _coalesce(exprs: list[str]) -> str:
    return exprs[0] if len(exprs) == 1 else "coalesce(" + ", ".join(exprs) + ")"


def _flat() -> Dialect:
    keys: dict[str, str] = {}
    fields: dict[str, list[str]] = {}
    for table in (SYSMON_KEYS, SECURITY_KEYS):
        for raw, names in table.items():
            for n in names:
                keys[n] = "VARCHAR"
                fields.setdefault(raw, []).append(_q(n))
    for k in ("EventID", "Channel", "Hostname", "Computer", "TimeCreated", "@timestamp", "EventTime",
              "SubjectUserName", "SubjectDomainName", "Protocol", "EventType"):
        keys[k] = "VARCHAR"
    sql = {f: _coalesce(v) for f, v in fields.items()}
    sql.update({
        "channel": '"Channel"',
        "eid": '"EventID"',
        "host": 'coalesce("Hostname", "Computer")',
        "sys_time": 'coalesce("TimeCreated", "@timestamp")',
        # 4688's creator pid is `ProcessId` (hex); for Sysmon it is the process itself.
        # 5156 names the connecting process `ProcessId` (NXLog exports `ProcessID`, which DuckDB cannot
        # read beside `ProcessId`: jsonfile fills those pids with a second read of that key).
        "parent_pid": 'CASE WHEN "EventID" = \'4688\' THEN "ProcessId" ELSE "ParentProcessId" END',
        "pid": 'CASE WHEN "EventID" = \'4688\' THEN "NewProcessId" ELSE coalesce("ProcessId", "SourceProcessId") END',
        "user": 'coalesce("User", "SourceUser", CASE WHEN "SubjectUserName" IS NOT NULL THEN '
                'concat_ws(\'\\\', "SubjectDomainName", "SubjectUserName") END)',
        "protocol": 'CASE "Protocol" WHEN \'6\' THEN \'tcp\' WHEN \'17\' THEN \'udp\' ELSE lower("Protocol") END',
    })
    return Dialect("flat", "flat JSON lines (NXLog, OTRF, Splunk exports: EventID and EventData at top level)",
                   keys, sql)


def _azure_windowsevent() -> Dialect:
    ed_keys = sorted({n for names in SYSMON_KEYS.values() for n in names})
    idx = {k: i + 1 for i, k in enumerate(ed_keys)}
    paths = ", ".join("'$.\"" + k + "\"'" for k in ed_keys)
    # EventData is a JSON *string*: parse it once into a list of values, then pick by index.
    ed = f"json_extract_string(\"EventData\", [{paths}])"
    sql = {f: _coalesce([f"ed[{idx[n]}]" for n in names]) for f, names in SYSMON_KEYS.items()}
    sql.update({"channel": '"Channel"', "eid": '"EventID"', "host": '"Computer"', "sys_time": '"TimeGenerated"'})
    return Dialect("azure-windowsevent", "Azure Monitor WindowsEvent rows (EventData as a JSON string)",
                   {"Channel": "VARCHAR", "EventID": "VARCHAR", "Computer": "VARCHAR", "TimeGenerated": "VARCHAR",
                    "EventData": "VARCHAR", "Type": "VARCHAR"}, sql, {"ed": ed})


_ECS_COLUMNS = {
    "@timestamp": "VARCHAR",
    "event": "STRUCT(code VARCHAR, provider VARCHAR, module VARCHAR, dataset VARCHAR, created VARCHAR)",
    "host": "STRUCT(name VARCHAR, hostname VARCHAR)",
    "winlog": "STRUCT(computer_name VARCHAR, channel VARCHAR, event_id VARCHAR, provider_name VARCHAR, "
              "event_data MAP(VARCHAR, VARCHAR))",
    "process": "STRUCT(entity_id VARCHAR, pid VARCHAR, executable VARCHAR, command_line VARCHAR, "
               "parent STRUCT(entity_id VARCHAR, pid VARCHAR, executable VARCHAR, command_line VARCHAR), "
               "hash STRUCT(sha1 VARCHAR, md5 VARCHAR, sha256 VARCHAR), "
               "pe STRUCT(company VARCHAR, product VARCHAR, original_file_name VARCHAR, imphash VARCHAR))",
    "user": "STRUCT(name VARCHAR, domain VARCHAR)",
    "source": "STRUCT(ip VARCHAR, port VARCHAR)",
    "destination": "STRUCT(ip VARCHAR, port VARCHAR, domain VARCHAR)",
    "network": "STRUCT(transport VARCHAR, direction VARCHAR, protocol VARCHAR)",
    "dns": "STRUCT(question STRUCT(name VARCHAR), resolved_ip VARCHAR[])",
    "file": "STRUCT(path VARCHAR)",
    "Target": "STRUCT(process STRUCT(entity_id VARCHAR, pid VARCHAR, executable VARCHAR))",
}


def _ecs() -> Dialect:
    def ed(*names: str) -> list[str]:
        return [f"winlog.event_data['{n}']" for n in names]

    sql = {
        "channel": "coalesce(winlog.channel, CASE WHEN event.provider ILIKE '%sysmon%' OR event.module = 'sysmon' "
                   "THEN 'Microsoft-Windows-Sysmon/Operational' END)",
        "eid": "coalesce(event.code, winlog.event_id)",
        "utc_time": _coalesce([*ed("UtcTime"), '"@timestamp"']),
        "host": "coalesce(winlog.computer_name, host.name, host.hostname)",
        "process_guid": _coalesce(["process.entity_id", *ed("ProcessGuid", "SourceProcessGUID")]),
        "pid": _coalesce(["process.pid", *ed("ProcessId", "SourceProcessId")]),
        "image": _coalesce(["process.executable", *ed("Image", "SourceImage")]),
        "command_line": _coalesce(["process.command_line", *ed("CommandLine")]),
        "user": "coalesce(CASE WHEN \"user\".name IS NOT NULL "
                "THEN concat_ws('\\', \"user\".domain, \"user\".name) END, "
                + ", ".join(ed("User", "SourceUser")) + ")",
        "parent_guid": _coalesce(["process.parent.entity_id", *ed("ParentProcessGuid")]),
        "parent_pid": _coalesce(["process.parent.pid", *ed("ParentProcessId")]),
        "parent_image": _coalesce(["process.parent.executable", *ed("ParentImage")]),
        "parent_command_line": _coalesce(["process.parent.command_line", *ed("ParentCommandLine")]),
        # Winlogbeat splits Hashes into process.hash.* and process.pe.imphash (lower case): rebuild
        # Sysmon's string in Sysmon's order, so a SHA1-only or MD5-only config keeps its hash too.
        "hashes": _coalesce([*ed("Hashes"), "NULLIF(concat_ws(',', 'SHA1=' || upper(process.hash.sha1), "
                                           "'MD5=' || upper(process.hash.md5), "
                                           "'SHA256=' || upper(process.hash.sha256), "
                                           "'IMPHASH=' || upper(process.pe.imphash)), '')"]),
        "company": _coalesce(["process.pe.company", *ed("Company")]),
        "product": _coalesce(["process.pe.product", *ed("Product")]),
        "original_file_name": _coalesce(["process.pe.original_file_name", *ed("OriginalFileName")]),
        "protocol": _coalesce(["network.transport", *ed("Protocol")]),
        "initiated": _coalesce([*ed("Initiated"), "network.direction"]),
        "src_ip": _coalesce(["source.ip", *ed("SourceIp")]),
        "src_port": _coalesce(["source.port", *ed("SourcePort")]),
        "dst_ip": _coalesce(["destination.ip", *ed("DestinationIp")]),
        "dst_port": _coalesce(["destination.port", *ed("DestinationPort")]),
        "dst_hostname": _coalesce(["destination.domain", *ed("DestinationHostname")]),
        "target_filename": _coalesce(["file.path", *ed("TargetFilename")]),
        "target_guid": _coalesce(["Target.process.entity_id", *ed("TargetProcessGUID")]),
        "target_pid": _coalesce(["Target.process.pid", *ed("TargetProcessId")]),
        "target_image": _coalesce(["Target.process.executable", *ed("TargetImage")]),
        "granted_access": _coalesce(ed("GrantedAccess")),
        "query_name": _coalesce(["dns.question.name", *ed("QueryName")]),
        "query_results": _coalesce([*ed("QueryResults"), "array_to_string(dns.resolved_ip, ';')"]),
    }
    return Dialect("ecs", "Winlogbeat / Elastic Agent ECS JSON", _ECS_COLUMNS, sql)


_SUMO_COLUMNS = {k: "VARCHAR" for k in (
    "metadata_deviceEventId", "device_hostname", "srcDevice_hostname", "srcDevice_ip", "srcPort", "dstDevice_ip",
    "dstPort", "dstDevice_port", "dstDevice_hostname", "ipProtocol", "baseImage", "application_name", "commandLine",
    "pid", "processUid", "parentBaseImage", "parentProcessName", "parentCommandLine", "parentPid", "user_username",
    "dns_query", "dns_replyIp", "action", "file_path", "file_hash_sha256", "timestamp", "_messagetime",
)}
_SUMO_COLUMNS["fields"] = "MAP(VARCHAR, VARCHAR)"


def _sumo() -> Dialect:
    def raw(*names: str) -> list[str]:
        return [f"fields['EventData.{n}']" for n in names] + [f"fields['{n}']" for n in names]

    ev = '"metadata_deviceEventId"'
    sql = {
        # `Microsoft-Windows-Sysmon/Operational-3`, `Linux-Sysmon/Operational-3`, or the seed's `windows:sysmon:3`
        "channel": f"CASE WHEN {ev} ILIKE 'windows:sysmon:%' THEN 'Microsoft-Windows-Sysmon/Operational' "
                   f"ELSE regexp_extract({ev}, '^(.*)-[0-9]+$', 1) END",
        "eid": f"regexp_extract({ev}, '[-:]([0-9]+)$', 1)",
        "utc_time": _coalesce(raw("UtcTime")),
        # epoch milliseconds; rendered as ISO text so the common cast applies
        "sys_time": "strftime(make_timestamp(TRY_CAST(coalesce(\"timestamp\", \"_messagetime\") AS BIGINT) * 1000), "
                    "'%Y-%m-%d %H:%M:%S.%g')",
        # srcDevice_hostname is the connection's source (SourceHostname): the remote host when inbound,
        # so the logging host (Computer) comes first and it is only the last resort.
        "host": _coalesce(['"device_hostname"', *[f"fields['{k}']" for k in ("Computer", "System.Computer")],
                           '"srcDevice_hostname"']),
        "process_guid": _coalesce(['"processUid"', *raw("ProcessGuid", "SourceProcessGUID")]),
        "pid": _coalesce(['"pid"', *raw("ProcessId", "SourceProcessId")]),
        "image": _coalesce(['"baseImage"', '"application_name"', *raw("Image", "SourceImage")]),
        "command_line": _coalesce(['"commandLine"', *raw("CommandLine")]),
        "user": _coalesce(['"user_username"', *raw("User")]),
        "parent_guid": _coalesce(raw("ParentProcessGuid")),
        "parent_pid": _coalesce(['"parentPid"', *raw("ParentProcessId")]),
        "parent_image": _coalesce(['"parentBaseImage"', '"parentProcessName"', *raw("ParentImage")]),
        "parent_command_line": _coalesce(['"parentCommandLine"', *raw("ParentCommandLine")]),
        "hashes": _coalesce([*raw("Hashes"), "CASE WHEN \"file_hash_sha256\" IS NOT NULL THEN "
                                            "'SHA256=' || upper(\"file_hash_sha256\") END"]),
        "company": _coalesce(raw("Company")),
        "product": _coalesce(raw("Product")),
        "original_file_name": _coalesce(raw("OriginalFileName")),
        "protocol": _coalesce(['lower("ipProtocol")', *raw("Protocol")]),
        "initiated": _coalesce(raw("Initiated")),
        "src_ip": _coalesce(['"srcDevice_ip"', *raw("SourceIp")]),
        "src_port": _coalesce(['"srcPort"', *raw("SourcePort")]),
        "dst_ip": _coalesce(['"dstDevice_ip"', *raw("DestinationIp")]),
        "dst_port": _coalesce(['"dstPort"', '"dstDevice_port"', *raw("DestinationPort")]),
        "dst_hostname": _coalesce(['"dstDevice_hostname"', *raw("DestinationHostname")]),
        "target_filename": _coalesce(['"file_path"', *raw("TargetFilename")]),
        "target_guid": _coalesce(raw("TargetProcessGUID")),
        "target_pid": _coalesce(raw("TargetProcessId")),
        "target_image": _coalesce(raw("TargetImage")),
        "granted_access": _coalesce(raw("GrantedAccess")),
        "query_name": _coalesce(['"dns_query"', *raw("QueryName")]),
        "query_results": _coalesce([*raw("QueryResults"), '"dns_replyIp"']),
    }
    return Dialect("sumo-cse", "Sumo Logic Cloud SIEM records (sec_record JSON)", _SUMO_COLUMNS, sql)


DIALECTS: dict[str, Dialect] = {d.name: d for d in (_flat(), _azure_windowsevent(), _ecs(), _sumo())}


def sniff_dialect(record: dict) -> str | None:
    """Pick the dialect from the keys of one parsed record (cheap; first record of a file)."""
    if not isinstance(record, dict):
        return None
    if "metadata_deviceEventId" in record or ("objectType" in record and "fields" in record):
        return "sumo-cse"
    if "winlog" in record or ("event" in record and isinstance(record.get("event"), dict)
                              and ("process" in record or "ecs" in record)):
        return "ecs"
    if record.get("Type") == "WindowsEvent" or isinstance(record.get("EventData"), str):
        return "azure-windowsevent"
    if "EventID" in record or "EventId" in record:
        return "flat"
    return None


def _int(col: str, t: str = "BIGINT") -> str:
    # DuckDB's cast trims blanks, reads 0x hex and yields NULL for '' and Sysmon's '-'
    return f"TRY_CAST({col} AS {t})"


def _text(col: str) -> str:
    """Sysmon writes '-' for 'not known'; canonical NULL."""
    return f"NULLIF(NULLIF({col}, '-'), '')"


# Values several canonical columns derive from, computed once per row (DuckDB does not share
# sub-expressions between select-list items).
_SHARED = f"""
    CASE WHEN channel = 'Microsoft-Windows-Sysmon/Operational' THEN 'sysmon'
         WHEN channel = 'Security' THEN 'security'
         WHEN channel = 'Linux-Sysmon/Operational' THEN 'sysmon-linux'
         WHEN channel ILIKE 'Linux-Sysmon%' THEN 'sysmon-linux'
         WHEN channel ILIKE '%Sysmon%' THEN 'sysmon'
         ELSE lower(channel) END AS _provider,
    {_int("eid", "INTEGER")} AS _eid,
    CASE lower(trim(initiated))
         WHEN 'true' THEN 'outbound' WHEN '1' THEN 'outbound' WHEN 'egress' THEN 'outbound'
         WHEN 'outbound' THEN 'outbound' WHEN '%%14593' THEN 'outbound'
         WHEN 'false' THEN 'inbound' WHEN '0' THEN 'inbound' WHEN 'ingress' THEN 'inbound'
         WHEN 'inbound' THEN 'inbound' WHEN '%%14592' THEN 'inbound' END AS _direction,
    {_text("src_ip")} AS _src_ip, {_int("src_port", "INTEGER")} AS _src_port,
    {_text("dst_ip")} AS _dst_ip, {_int("dst_port", "INTEGER")} AS _dst_port"""


def canonical_sql(raw: str) -> str:
    """SELECT of the canonical columns (minus source_*) from `raw`, a relation of the RAW_FIELDS."""
    kind = ("CASE WHEN _provider LIKE 'sysmon%' THEN (CASE _eid WHEN 1 THEN 'process_start' WHEN 3 THEN 'network' "
            "WHEN 11 THEN 'file_create' WHEN 10 THEN 'process_access' WHEN 22 THEN 'dns' ELSE 'other' END) "
            "WHEN _provider = 'security' THEN (CASE _eid WHEN 4688 THEN 'process_start' WHEN 5156 THEN 'network' "
            "ELSE 'other' END) ELSE 'other' END")
    # Sysmon's own UtcTime first (one clock for every event), the system time when UtcTime is missing or
    # cannot be read (a locale's spelling). Sysmon's own format parsed directly first (3x cheaper than the
    # zone-aware cast, same result); any other spelling, with or without a zone, by the zone-aware cast.
    def parsed(t: str) -> str:
        return (f"coalesce(try_strptime({t}, '%Y-%m-%d %H:%M:%S.%g'), "
                f"TRY_CAST(TRY_CAST({t} AS TIMESTAMPTZ) AS TIMESTAMP))")

    time = f"coalesce({parsed('utc_time')}, {parsed('sys_time')})"
    cols = ",\n".join([
        f"{kind} AS kind", "_provider AS provider", "_eid AS event_id", f"{time} AS time",
        "lower(NULLIF(host, '')) AS host",
        f"{_text('process_guid')} AS process_guid", f"{_int('pid')} AS pid", f"{_text('image')} AS image",
        f"{_text('command_line')} AS command_line", f"{_text('user')} AS \"user\"",
        f"{_text('parent_guid')} AS parent_guid", f"{_int('parent_pid')} AS parent_pid",
        f"{_text('parent_image')} AS parent_image", f"{_text('parent_command_line')} AS parent_command_line",
        f"{_text('hashes')} AS hashes", f"{_text('company')} AS company", f"{_text('product')} AS product",
        f"{_text('original_file_name')} AS original_file_name", f"lower({_text('protocol')}) AS protocol",
        "_direction AS direction", "_src_ip AS src_ip", "_src_port AS src_port", "_dst_ip AS dst_ip",
        "_dst_port AS dst_port", f"{_text('dst_hostname')} AS dst_hostname",
        "CASE WHEN _direction = 'inbound' THEN _src_ip ELSE _dst_ip END AS remote_ip",
        "CASE WHEN _direction = 'inbound' THEN _src_port ELSE _dst_port END AS remote_port",
        f"{_text('target_filename')} AS target_filename", f"{_text('target_guid')} AS target_guid",
        f"{_int('target_pid')} AS target_pid", f"{_text('target_image')} AS target_image",
        f"{_text('granted_access')} AS granted_access", f"{_text('query_name')} AS query_name",
        f"{_text('query_results')} AS query_results",
    ])
    return f"SELECT {cols} FROM (SELECT *, {_SHARED} FROM ({raw}))"
