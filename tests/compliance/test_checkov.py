"""checkov, the scanner auditors run, on every committed template (tox -e compliance).

Runs in its own tox environment because checkov's pins conflict with the library's. It reads
the committed out/*.json, which the main suite proves equal to the build.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

OUT = Path(__file__).resolve().parents[2] / "out"
TEMPLATES = sorted(p for p in OUT.glob("*.json") if not p.name.endswith(".stack-policy.json"))

#: Checks the key stacks rely on; the compliance map cites them.
REQUIRED_PASSES = {
    "CKV_AWS_7": "KMS rotation", "CKV_AWS_33": "no wildcard principal in key policy",
    "CKV_AWS_35": "CloudTrail encrypted with a CMK", "CKV_AWS_36": "log file validation",
    "CKV_AWS_67": "CloudTrail in all regions", "CKV_AWS_18": "audit bucket access logging",
    "CKV_AWS_19": "bucket encryption", "CKV_AWS_21": "bucket versioning",
    "CKV_AWS_53": "block public ACLs", "CKV_AWS_54": "block public policy", "CKV_AWS_55": "ignore public ACLs",
    "CKV_AWS_56": "restrict public buckets",
    "CKV_AWS_66": "log group retention", "CKV_AWS_158": "log group KMS encryption",
}
#: Skips, each explained in the resource's Metadata: (check, resource) per kind of template.
SKIPS = {
    "key": [("CKV_AWS_18", "AWS::S3::Bucket.AuditLogAccessLogBucket")],
    # The alarm path uses no KMS key: a key on it could be disabled by the person an alarm reports (D26).
    "alarms": [("CKV_AWS_26", "AWS::SNS::Topic.AlarmTopic"), ("CKV_AWS_26", "AWS::SNS::Topic.WatchdogTopic"),
               ("CKV_AWS_27", "AWS::SQS::Queue.AuditEventDeadLetterQueue")],
    # Metric filters and alarms: checkov has no check for either.
    "filters": [],
    # A DR region: its access-log bucket, and its forwarding path's watchdog topic and queue (D26, D51).
    "replica": [("CKV_AWS_18", "AWS::S3::Bucket.AuditLogAccessLogBucket"),
                ("CKV_AWS_26", "AWS::SNS::Topic.WatchdogTopic"),
                ("CKV_AWS_27", "AWS::SQS::Queue.AuditEventDeadLetterQueue")],
}
#: What a DR region's stack relies on: its buckets' encryption, versioning, privacy and access logging.
REPLICA_PASSES = {"CKV_AWS_18", "CKV_AWS_19", "CKV_AWS_21", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55",
                  "CKV_AWS_56"}


def kind(report: dict[str, Any]) -> str:
    name = report["_template"]
    for suffix in ("alarms", "filters"):
        if name.endswith(f".{suffix}.json"):
            return suffix
    return "replica" if ".replica-" in name else "key"


def checkov(template: Path) -> dict[str, Any]:
    binary = shutil.which("checkov", path=str(Path(sys.executable).parent)) or shutil.which("checkov")
    if binary is None:
        pytest.fail("checkov is not installed; run these tests with `tox -e compliance`")
    result = subprocess.run(
        [binary, "-f", str(template), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    if "results" not in report:  # no resource checkov has a check for: only a summary comes back
        report = {"summary": report, "results": {"failed_checks": [], "passed_checks": [], "skipped_checks": []}}
    return dict(report)


@pytest.fixture(scope="module", params=TEMPLATES, ids=[p.stem for p in TEMPLATES])
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {**checkov(request.param), "_template": request.param.name}


def test_there_are_templates() -> None:
    assert {p.stem for p in TEMPLATES} == {f"{env}{suffix}" for env in ("dev", "staging", "production")
                                           for suffix in ("", ".alarms", ".filters")} | {"production.replica-us-east-1"}


def test_no_failed_checks(report: dict[str, Any]) -> None:
    assert report["summary"]["parsing_errors"] == 0
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)


def test_required_checks_pass(report: dict[str, Any]) -> None:
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    if kind(report) == "key":
        assert not set(REQUIRED_PASSES) - passed
    elif kind(report) == "replica":
        assert not REPLICA_PASSES - passed
    elif kind(report) == "filters":
        assert report["summary"]["parsing_errors"] == 0
    else:
        # checkov has no passing check for topics, alarms, rules or a queue with SSE-SQS; make sure it
        # did read every resource (its three findings are the explained skips).
        assert report["summary"]["resource_count"] >= 10


def test_every_skip_is_explained_in_the_resource_metadata(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert sorted((c["check_id"], c["resource"]) for c in skipped) == SKIPS[kind(report)]
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"]) > 20
