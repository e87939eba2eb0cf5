"""The exported Sigma rule parses with pySigma and passes `sigma check` (every validator but the two that
download MITRE data), and says what it cannot express."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stagehunt.config import Config
from stagehunt.export import export
from stagehunt.export.sigma import BASE_NAME, CORRELATION_NAME, FILENAME, literal

pytest.importorskip("sigma.collection")

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.plugins import InstalledSigmaPlugins
from sigma.rule import SigmaRule
from sigma.types import SigmaString
from sigma.validation import SigmaValidator

OFFLINE_EXCLUDED = ("attacktag", "d3_fendtag")  # these validators fetch MITRE data over the network
TUNED = Config().with_overrides(
    detection={"min_ips": 3, "strong_ips": 5, "window": 7200, "window_mode": "tumbling", "group_by": "seed"},
    scope={"home_networks": ("81.2.69.0/24",), "count_internal": True},
    exclusions={"images": ("C:\\Tools\\**\\sync?.exe", "\\\\fileserver\\share\\agent.exe"),
                "users": ("CORP\\svc_backup",), "hosts": ("build-01",), "destinations": ("52.84.0.0/15",),
                "ports": (123,), "hashes": ("SHA256=" + "ab" * 32,)},
)


def write(tmp_path: Path, cfg: Config) -> Path:
    path = tmp_path / FILENAME
    path.write_text(export("sigma", cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize("cfg", [Config(), TUNED], ids=["default", "tuned"])
def test_parses_and_passes_the_validators(cfg: Config, tmp_path: Path) -> None:
    collection = SigmaCollection.load_ruleset([write(tmp_path, cfg)])
    assert not collection.errors
    base, correlation = collection.rules
    assert isinstance(base, SigmaRule) and base.name == BASE_NAME
    assert isinstance(correlation, SigmaCorrelationRule) and correlation.name == CORRELATION_NAME
    assert correlation.rules[0].rule is base  # the reference resolves
    assert correlation.type.name == "VALUE_COUNT"
    assert correlation.condition.fieldref == "DestinationIp" and correlation.condition.count == cfg.detection.min_ips
    assert correlation.timespan.seconds == cfg.detection.window
    assert [t.name for t in base.tags] == ["command-and-control", "t1104"]
    validators = InstalledSigmaPlugins.autodiscover().validators
    chosen = [v for name, v in validators.items() if name not in OFFLINE_EXCLUDED]
    assert len(chosen) > 20  # the check really ran
    assert SigmaValidator(chosen).validate_rules(iter(collection.rules)) == []


def test_group_by_follows_the_configuration() -> None:
    default = SigmaCollection.from_yaml(export("sigma", Config())).rules[1]
    seed = SigmaCollection.from_yaml(export("sigma", TUNED)).rules[1]
    assert default.group_by == ["Computer", "User", "Image", "ProcessGuid"]
    assert seed.group_by == ["Computer", "User", "Image"]  # no CommandLine on Sysmon event 3


@pytest.mark.skipif(shutil.which("sigma") is None, reason="sigma-cli not installed")
@pytest.mark.parametrize("cfg", [Config(), TUNED], ids=["default", "tuned"])
def test_sigma_check_command(cfg: Config, tmp_path: Path) -> None:
    path = write(tmp_path, cfg)
    run = subprocess.run(["sigma", "check", "--fail-on-issues", *[a for x in OFFLINE_EXCLUDED for a in ("-x", x)],
                          str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No validation issues found" in run.stdout


def test_description_states_what_sigma_cannot_express() -> None:
    text = export("sigma", TUNED)
    assert "handoff" in text and "cannot require" in text  # no wrong handoff rule, an explanation
    assert "tumbling window_mode (fixed UTC buckets) cannot be expressed" in text
    assert "carry no" in text and "CommandLine" in text  # seed grouping without the command line
    assert "hashes (1) are NOT applied" in text


def test_exclusions_are_exact_values_not_substrings() -> None:
    rule = SigmaCollection.from_yaml(export("sigma", TUNED)).rules[0]
    names = rule.detection.detections["filter_image_names"].detection_items[0]
    values = {str(v) for v in names.value}
    assert "*\\chrome.exe" in values and "*/chrome.exe" in values  # endswith the separator + name
    assert not any(v.startswith("*") and v.endswith("*") for v in values)  # never contains
    paths = rule.detection.detections["filter_image_paths"].detection_items[0]
    assert "\\\\fileserver\\share\\agent.exe" in {"".join(map(str, v.s)) for v in paths.value}  # UNC intact


@pytest.mark.parametrize("text", ["C:\\Tools\\a.exe", "\\\\srv\\share\\x.exe", "a*b?c", "end\\", "x\\*y"])
def test_literal_round_trips_through_pysigma(text: str) -> None:
    parsed = SigmaString(literal(text))
    assert not parsed.contains_special()  # no wildcard survives: * and ? are literal
    assert "".join(part for part in parsed.s if isinstance(part, str)) == text
