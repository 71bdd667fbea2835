"""The benchmark script (``tox -e bench``) keeps working: it runs and reports every figure.

No timing is asserted here (targets are the script's business); a benchmark that silently stops
measuring something is what this guards against.
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_benchmark_reports_every_figure_without_deploys() -> None:
    result = subprocess.run([sys.executable, "tests/benchmark.py", "--runs", "1", "--no-deploy"], cwd=ROOT,
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    rows = {line[:44].strip(): line[44:].split() for line in result.stdout.splitlines()}
    for label in ("python -c pass (the interpreter alone)", "import scrybe_kms",
                  "scrybe-kms build (3 environments, 24 files)", "cfn-lint, all 10 templates"):
        seconds, _, peak_mb, _ = rows[label][:4]
        assert float(seconds) > 0 and float(peak_mb) > 5, (label, rows[label])
    assert "scrybe-kms build imports boto3: no, botocore: no, cfn-lint: no" in result.stdout
    assert "import scrybe_kms loads none of botocore, troposphere, awacs, principalmapper" in result.stdout
    phases = result.stdout.split("where one cold build's time goes:\n")[1].split("\n\n")[0].splitlines()
    assert [p.split("  ")[1] for p in phases] == [
        "import scrybe_kms.cli (troposphere, awacs)", "load and validate 3 stack files", "render 3 key templates",
        "render 3 alarm templates", "render 3 filter templates", "render 1 DR templates",
        "evaluate 4 access matrices", "10 stack policies"]
    assert "deploys of the production template" not in result.stdout
