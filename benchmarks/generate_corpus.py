"""Deterministic generator of a mixed Sysmon JSON-lines corpus (NXLog/OTRF flat dialect).

About 1 KB per event, mostly process-creation (EID 1) and network (EID 3) events, with file-create
(11), DNS (22) and process-access (10) mixed in, spread over many hosts. A few processes per
thousand are planted multi-stage C2 (one process reaching several public addresses), so a hunt over
the corpus has real work to do and real findings to produce.

    python benchmarks/generate_corpus.py --events 1000000 -o /tmp/corpus.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta

import orjson

IMAGES = [
    r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
    r"C:\Windows\System32\cmd.exe",
    r"C:\Windows\System32\svchost.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Windows\System32\rundll32.exe",
    r"C:\Program Files\Vendor\agent\agent.exe",
    r"C:\Users\Public\updater.exe",
    r"C:\Windows\System32\notepad.exe",
]
PAD = "x" * 300  # a realistic Message field makes events about 1 KB, as real exports are


def _guid(rng: random.Random) -> str:
    a, b, c, d, e = (rng.getrandbits(n) for n in (32, 16, 16, 16, 48))
    return f"{{{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}}}"


def _public_ip(rng: random.Random) -> str:
    # 20.0.0.0/8 .. 60.0.0.0/8 are global unicast; none of them is special-purpose.
    return f"{rng.randint(20, 60)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate(n_events: int, seed: int = 1104):
    """Yield n_events dicts; same seed, same corpus."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 0, 0, 0)
    hosts = [f"ws{i:04d}.corp.example" for i in range(500)]
    live: list[dict] = []
    for i in range(n_events):
        t = start + timedelta(milliseconds=i * 50)
        utc = t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"
        host = rng.choice(hosts)
        r = rng.random()
        base = {
            "Hostname": host,
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "SourceName": "Microsoft-Windows-Sysmon",
            "UtcTime": utc,
            "@timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "Keywords": "0x8000000000000000",
            "Level": "4",
            "RuleName": "-",
            "Message": PAD,
        }
        if r < 0.35 or not live:
            image = rng.choice(IMAGES)
            parent = rng.choice(live) if live else None
            # A benign process talks to private addresses and to one public service of its own; a planted
            # one (0.3 %) reaches several public addresses: a multi-stage C2 to find.
            proc = {"guid": _guid(rng), "pid": rng.randint(100, 65000), "image": image, "host": host,
                    "planted": rng.random() < 0.003, "home": _public_ip(rng)}
            live.append(proc)
            if len(live) > 5000:
                live.pop(rng.randrange(len(live)))
            base.update({
                "EventID": 1, "ProcessGuid": proc["guid"], "ProcessId": str(proc["pid"]), "Image": image,
                "CommandLine": f'"{image}" -arg {i}', "User": f"CORP\\user{rng.randint(1, 900)}",
                "ParentProcessGuid": parent["guid"] if parent else _guid(rng),
                "ParentProcessId": str(parent["pid"]) if parent else "4",
                "ParentImage": parent["image"] if parent else r"C:\Windows\explorer.exe",
                "ParentCommandLine": "explorer.exe", "IntegrityLevel": "Medium",
                "Hashes": "SHA256=" + f"{rng.getrandbits(256):064x}",
                "Company": "Microsoft Corporation", "Product": "Windows", "OriginalFileName": "x.exe",
                "CurrentDirectory": "C:\\Users\\user\\",
            })
        else:
            proc = rng.choice(live)
            base["Hostname"] = proc["host"]
            common = {"ProcessGuid": proc["guid"], "ProcessId": str(proc["pid"]), "Image": proc["image"]}
            if r < 0.85:
                planted = proc["planted"]
                if planted:
                    dst = _public_ip(rng)
                elif rng.random() < 0.3:
                    dst = proc["home"]
                else:
                    dst = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                base.update(common)
                base.update({
                    "EventID": 3, "User": "CORP\\user", "Protocol": "tcp", "Initiated": "true",
                    "SourceIsIpv6": "false", "SourceIp": "10.1.2.3", "SourceHostname": "-",
                    "SourcePort": str(rng.randint(49152, 65535)), "SourcePortName": "-",
                    "DestinationIsIpv6": "false", "DestinationIp": dst, "DestinationHostname": "-",
                    "DestinationPort": rng.choice(["443", "443", "80", "8443", "1080"]), "DestinationPortName": "-",
                })
            elif r < 0.92:
                base.update(common)
                base.update({"EventID": 11, "TargetFilename": f"C:\\Users\\user\\AppData\\Local\\Temp\\f{i}.tmp",
                             "CreationUtcTime": utc})
            elif r < 0.97:
                base.update(common)
                base.update({"EventID": 22, "QueryName": f"host{rng.randint(1, 5000)}.example.com",
                             "QueryStatus": "0", "QueryResults": f"::ffff:{_public_ip(rng)};"})
            else:
                target = rng.choice(live)
                base.update({"EventID": 10, "SourceProcessGUID": proc["guid"], "SourceProcessId": str(proc["pid"]),
                             "SourceImage": proc["image"], "TargetProcessGUID": target["guid"],
                             "TargetProcessId": str(target["pid"]), "TargetImage": target["image"],
                             "GrantedAccess": rng.choice(["0x1000", "0x1410", "0x1fffff"]), "CallTrace": "ntdll.dll"})
        yield base


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="number of events (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1104, help="random seed (same seed, same corpus)")
    ap.add_argument("-o", "--output", default="-", help="output file (default: standard output)")
    args = ap.parse_args(argv)
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    with out:
        buf = []
        for ev in generate(args.events, args.seed):
            buf.append(orjson.dumps(ev))
            if len(buf) >= 10000:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")


if __name__ == "__main__":
    main()
