"""Configuration: shipped defaults, TOML overrides, clear one-line errors, `config show` round-trips."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stagehunt.config import Config, ConfigError, load_config, parse_duration


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stagehunt.cli", *args], capture_output=True, text=True)


def test_defaults_are_the_seeds_intent():
    c = Config()
    assert (c.detection.min_ips, c.detection.strong_ips, c.detection.window) == (2, 3, 86400)
    assert c.detection.window_mode == "sliding" and c.detection.group_by == "process"
    assert not c.scope.count_internal and c.exclusions.use_defaults


def test_toml_overrides_only_what_it_names(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[detection]\nmin_ips = 3\nwindow = "30m"\n[scope]\nhome_networks = ["203.0.113.0/24"]\n')
    c = load_config(p)
    assert (c.detection.min_ips, c.detection.window, c.detection.strong_ips) == (3, 1800, 3)
    assert c.scope.home_networks == ("203.0.113.0/24",)


@pytest.mark.parametrize(("text", "says"), [
    ("[detection]\nmin_ips = \"two\"\n", "[detection] min_ips: expected an integer"),
    ("[detection]\nmin_ips = 1\n", "min_ips: must be at least 2"),
    ("[detection]\nmin_ips = 5\n", "strong_ips (3) must be at least min_ips (5): raise strong_ips (--strong-ips)"),
    ("[detection]\nwindow = \"a day\"\n", "not a duration"),
    ("[detection]\nwindow_mode = \"hopping\"\n", "choose sliding or tumbling"),
    ("[detection]\nbogus = 1\n", "[detection]: unknown key(s) bogus"),
    ("[nosuch]\nx = 1\n", "unknown section(s) nosuch"),
    ("detection = 3\n", "detection must be a section ([detection] and its keys)"),
    ("min_ips = 3\n[detection]\nwindow = \"1h\"\n", "unknown section(s) min_ips"),
    ("scope = \"all\"\n", "scope must be a section"),
    ("[scope]\nhome_networks = [\"10.0.0.0/33\"]\n", "is not a CIDR network"),
    # host bits: 10.0.0.1/8 is not silently widened to 10.0.0.0/8 (nor taken as the one host)
    ("[scope]\nhome_networks = [\"10.0.0.1/8\"]\n",
     "'10.0.0.1/8' has host bits set; write 10.0.0.0/8 for the network or 10.0.0.1/32 for the one address"),
    ("[exclusions]\ndestinations = [\"2001:db8::1/32\"]\n",
     "[exclusions] destinations: '2001:db8::1/32' has host bits"),
    ("[exclusions]\nports = [70000]\n", "is not a port number"),
    ("[exclusions]\nprofiles = [\"nope\"]\n", "unknown profile 'nope'"),
    ("[scoring]\nmin_score = 101\n", "[scoring] min_score"),
    ("[detection\n", "not valid TOML"),
])
def test_bad_values_are_one_clear_error_naming_file_and_key(tmp_path, text, says):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert says in str(e.value) and str(p) in str(e.value)
    res = _cli("config", "show", "--config", str(p))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and says in res.stderr


@pytest.mark.parametrize(("content", "says"), [
    (None, "cannot read the config file: Is a directory"),
    (b"[detection]\nmin_ips = 3 # \xe9\n", "not UTF-8 text, as TOML must be (byte 27)")])
def test_a_config_that_is_no_text_file_is_one_clear_error(tmp_path, content, says):
    p = tmp_path / "conf.toml"
    if content is None:
        p.mkdir()
    else:
        p.write_bytes(content)  # Latin-1, as an old editor saves it
    res = _cli("config", "show", "--config", str(p))
    assert res.returncode == 2 and res.stderr.startswith(f"stagehunt: error: {p}: ")
    assert says in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_config_show_round_trips(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[detection]\nmin_ips = 4\nstrong_ips = 5\n[exclusions]\nimages = ["C:\\\\Tools\\\\x.exe"]\n')
    res = _cli("config", "show", "--config", str(p))
    assert res.returncode == 0
    shown = tomllib.loads(res.stdout)
    assert shown["detection"]["min_ips"] == 4 and shown["exclusions"]["images"] == ["C:\\Tools\\x.exe"]
    back = tmp_path / "back.toml"
    back.write_text(res.stdout)
    assert load_config(back) == load_config(p)


@pytest.mark.parametrize(("text", "secs"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), (60, 60)])
def test_durations(text, secs):
    assert parse_duration(text) == secs


def test_home_net_with_host_bits_is_refused_on_the_command_line():
    examples = str(Path(__file__).parents[1] / "examples")
    res = _cli("hunt", examples, "--home-net", "192.168.1.10/24")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "'192.168.1.10/24' has host bits set; write 192.168.1.0/24" in res.stderr
    assert _cli("hunt", examples, "--home-net", "192.168.1.0/24", "-O", "jsonl").returncode == 0
