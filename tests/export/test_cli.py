"""`stagehunt export`: the command, its errors, and the message when pySigma is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from stagehunt.cli import app
from stagehunt.config import load_config
from stagehunt.export import export

CONFIG = """
[detection]
min_ips = 4
strong_ips = 6
window = "90m"

[exclusions]
images = ["acme-sync.exe"]
"""


def test_writes_the_target_for_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "stagehunt.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "rule.yml"
    result = CliRunner().invoke(app, ["export", "--target", "sigma", "--config", str(cfg), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text == export("sigma", load_config(cfg))
    assert "gte: 4" in text and "timespan: '90m'" in text and "acme-sync.exe" in text


def test_standard_output() -> None:
    result = CliRunner().invoke(app, ["export", "-t", "sumo-query"])
    assert result.exit_code == 0
    assert '"Microsoft-Windows-Sysmon/Operational-3"' in result.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "-t", "qradar"])
    assert result.exit_code == 2 and "unknown --target 'qradar'" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[detection]\nmin_ips = 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["export", "-t", "sigma", "-c", str(bad)])
    assert result.exit_code == 2 and "min_ips" in result.output
    long_window = tmp_path / "long.toml"
    long_window.write_text('[detection]\nwindow = "7d"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["export", "-t", "sumo-rule", "-c", str(long_window)])
    assert result.exit_code == 2 and "1 minute to 5 days" in result.output


# A Python in which pySigma is not installed: every import of the `sigma` package fails.
WITHOUT_PYSIGMA = """
import sys
class NoPySigma:
    def find_spec(self, name, path=None, target=None):
        if name == "sigma" or name.startswith("sigma."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoPySigma())
from stagehunt.cli import main
sys.argv = ["stagehunt", "export", "--target", sys.argv[1]]
main()
"""


def _without_pysigma(target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_PYSIGMA, target], capture_output=True, text=True,
                          timeout=120)


def test_without_pysigma_says_what_to_install() -> None:
    run = _without_pysigma("kql")
    assert run.returncode == 2
    message = " ".join(run.stderr.split())
    assert "pip install 'stagehunt[export]'" in message
    assert "pysigma" in message and "pysigma-backend-kusto" in message


def test_pure_python_targets_need_no_pysigma() -> None:
    for target in ("sigma", "sumo-query", "sumo-rule", "sumo-terraform"):
        run = _without_pysigma(target)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip()
