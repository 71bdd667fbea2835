"""Mutation check: break one security property at a time and show which test catches it.

Each mutation replaces one snippet of source in a scratch copy of the repository, then runs the
test suite there (without the emulator tests, and without the golden-file comparisons, which only
say "something changed"). A mutation is *caught* when some other test fails; the first failing
test is reported. Every mutation must be caught. Run with ``tox -e mutation`` (about 5 minutes on
2 cores; not part of the default ``tox`` run); ``--only N`` runs one mutation.

A snippet that is no longer in the source is reported as STALE and fails the check: the mutation
list must follow the code.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Not copied into the scratch repository: VCS data, tool environments and caches.
SKIP = (".git", ".tox", ".emulator", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.egg-info")
#: Byte-for-byte comparisons with the committed out/: they say "something changed", not what is wrong.
GOLDEN = ("tests/test_golden.py::test_out_matches_the_build",
          "tests/test_cli.py::test_build_all_writes_what_is_committed",
          "tests/test_cli.py::test_second_build_changes_nothing",
          # Measures speed, not a security property, and runs the whole build several times.
          "tests/test_benchmark_script.py")


@dataclass(frozen=True)
class Mutation:
    what: str
    path: str
    old: str
    new: str


M = Mutation
MUTATIONS: tuple[Mutation, ...] = (
    # Keys
    M("PHI key no longer retained on stack delete", "scrybe_kms/template/key.py",
      '            DeletionPolicy="Retain",\n            UpdateReplacePolicy="Retain",\n        )\n    )\n    return KeyHandle',
      '            DeletionPolicy="Delete",\n            UpdateReplacePolicy="Retain",\n        )\n    )\n    return KeyHandle'),
    M("key no longer retained on replacement", "scrybe_kms/template/key.py",
      '            UpdateReplacePolicy="Retain",\n        )\n    )\n    return KeyHandle',
      '            UpdateReplacePolicy="Delete",\n        )\n    )\n    return KeyHandle'),
    M("key rotation off", "scrybe_kms/template/key.py", "EnableKeyRotation=True", "EnableKeyRotation=False"),
    M("admins may create grants (give themselves Decrypt)", "scrybe_kms/template/key_statements.py",
      "    kms.CancelKeyDeletion,\n    kms.CreateAlias,", "    kms.CancelKeyDeletion,\n    kms.CreateGrant,\n    kms.CreateAlias,"),
    M("application role may create grants", "scrybe_kms/template/key_statements.py",
      "APPLICATION_CRYPTO_ACTIONS: tuple[Action, ...] = (\n    kms.Encrypt,",
      "APPLICATION_CRYPTO_ACTIONS: tuple[Action, ...] = (\n    kms.CreateGrant,\n    kms.Encrypt,"),
    M("break-glass without MFA", "scrybe_kms/template/key_statements.py",
      'conditions(Bool(keys.MFA_PRESENT, "true")))', "None)"),
    M("lockout-bypass deny turned into an allow", "scrybe_kms/template/key_statements.py",
      "return statement(Deny, sid, Principal(\"AWS\", \"*\"), [kms.PutKeyPolicy]",
      "return statement(Allow, sid, Principal(\"AWS\", \"*\"), [kms.PutKeyPolicy]"),
    M("grants not limited to AWS resources", "scrybe_kms/template/key_statements.py",
      "conditions(Bool(keys.GRANT_IS_FOR_AWS_RESOURCE, \"true\"), *_via(via_services, account)))\n\n\ndef allow_key_admin",
      "conditions(*_via(via_services, account)))\n\n\ndef allow_key_admin"),
    M("service use not limited to this account", "scrybe_kms/template/key_statements.py",
      "return [StringEquals({keys.VIA_SERVICE: list(endpoints), keys.CALLER_ACCOUNT: account})]",
      "return [StringEquals({keys.VIA_SERVICE: list(endpoints)})]"),
    M("service use not limited to the services", "scrybe_kms/template/key_statements.py",
      "return [StringEquals({keys.VIA_SERVICE: list(endpoints), keys.CALLER_ACCOUNT: account})]",
      "return [StringEquals({keys.CALLER_ACCOUNT: account})]"),
    M("auditors may decrypt anything, not only CloudTrail logs", "scrybe_kms/template/key_statements.py",
      "conditions(Null(keys.CLOUDTRAIL_CONTEXT, \"false\"), *_via([s3_endpoint], account))",
      "conditions(*_via([s3_endpoint], account))"),
    M("compliance readers: any role of the account, not the service-linked role", "scrybe_kms/template/key_statements.py",
      "conditions(ArnEquals(keys.PRINCIPAL_ARN, role_arn),", "conditions("),
    M("application scoping setting ignored", "scrybe_kms/template/key_users.py",
      "[cfg.application_role_arn], via_services=app_via, account=ACCOUNT))",
      "[cfg.application_role_arn], via_services=[], account=ACCOUNT))"),
    M("builders accept a root principal", "scrybe_kms/config/validators.py",
      'if _ROLE_ARN.fullmatch(value) is None:', 'if _ROLE_ARN.fullmatch(value) is None and not value.endswith(":root"):'),
    # Configuration
    M("an admin may also be the application role", "scrybe_kms/config/rules.py",
      '        clash(f"admin_role_arns[{i}]", admin, app,', '        clash(f"admin_role_arns[{i}]", admin, None,'),
    M("an auditor may be an admin", "scrybe_kms/config/rules.py",
      "            clash(name, reader, admin, \"an admin role", "            clash(name, reader, None, \"an admin role"),
    M("roles from another account accepted", "scrybe_kms/config/rules.py",
      "        elif app is not None and v.arn_account(arn) != v.arn_account(app):",
      "        elif False:"),
    # Buckets
    M("audit bucket uses an S3 Bucket Key (auditors' condition never matches)", "scrybe_kms/template/bucket.py",
      "BucketKeyEnabled=False,", "BucketKeyEnabled=True,"),
    M("TLS no longer required", "scrybe_kms/template/policies.py",
      'conditions(Bool(keys.SECURE_TRANSPORT, "false"))', 'conditions(Bool(keys.SECURE_TRANSPORT, "true"))'),
    M("version-deletion deny only on the bucket ARN", "scrybe_kms/template/bucket.py",
      "Action=[s3_actions.DeleteObjectVersion], Resource=[handle.objects()]",
      "Action=[s3_actions.DeleteObjectVersion], Resource=[handle.arn]"),
    M("public bucket policies allowed", "scrybe_kms/template/bucket.py",
      "            BlockPublicPolicy=True,", "            BlockPublicPolicy=False,"),
    M("Object Lock dropped from the audit bucket", "scrybe_kms/template/bucket.py",
      "    lock = {} if object_lock is None else {", "    lock = {} if True else {"),
    M("noncurrent log versions expire a day after an overwrite, without a lock", "scrybe_kms/template/retention.py",
      "NoncurrentDays=1 if locked else retention_days", "NoncurrentDays=1"),
    M("versioning suspended", "scrybe_kms/template/bucket.py",
      'VersioningConfiguration(Status="Enabled")', 'VersioningConfiguration(Status="Suspended")'),
    # Trail and alarms
    M("single-region trail", "scrybe_kms/template/trail.py", "IsMultiRegionTrail=True", "IsMultiRegionTrail=False"),
    M("log file validation off", "scrybe_kms/template/trail.py",
      "EnableLogFileValidation=True", "EnableLogFileValidation=False"),
    M("CloudTrail may use the key for any trail", "scrybe_kms/template/trail.py",
      '            StringEquals(keys.SOURCE_ARN, trail_arn),\n        ),\n        # No encryption-context',
      '        ),\n        # No encryption-context'),
    M("trail log group encrypted with the PHI key", "scrybe_kms/template/assemble.py",
      "log_group = trail.trail_log_group(t, environment=env, key=audit,",
      "log_group = trail.trail_log_group(t, environment=env, key=phi,"),
    M("alarm topics encrypted with the audit key (disabling it silences them)", "scrybe_kms/template/alarms.py",
      '        DisplayName=f"Scrybe PHI key {kind} ({environment})",\n',
      '        DisplayName=f"Scrybe PHI key {kind} ({environment})",\n        KmsMasterKeyId=key_variables(environment)["AuditKeyArn"],\n'),
    M("CIS 4.7 pattern altered", "scrybe_kms/template/monitoring.py",
      '"($.eventName=ScheduleKeyDeletion))}")', '"($.eventName=ScheduleKeyDeletion)) && ($.errorCode NOT EXISTS)}")'),
    M("grants AWS services make page people (or direct ones do not)", "scrybe_kms/template/monitoring.py",
      '                   Match("userIdentity.invokedBy", absent=True)),', "                   ),"),
    M("failed calls page people", "scrybe_kms/template/watched_events.py",
      '        if not event.include_failures:\n            base.append("($.errorCode NOT EXISTS)")', "        pass"),
    M("trail tampering by ARN not matched", "scrybe_kms/template/monitoring.py",
      "trail = (naming.trail_name(env), naming.trail_arn_sub(env))",
      "trail = (naming.trail_name(env),)"),
    M("alarms notify nobody", "scrybe_kms/template/alarms.py", "AlarmActions=list(actions),", "AlarmActions=[],"),
    M("one-minute alarms that miss late events", "scrybe_kms/template/alarms.py", "ALARM_PERIOD = 300", "ALARM_PERIOD = 60"),
    M("silence of the log group is not an alarm", "scrybe_kms/template/alarms.py",
      'missing="breaching", period=HEARTBEAT_PERIOD', 'missing="notBreaching", period=HEARTBEAT_PERIOD'),
    M("rule failures reported through the alarm topic they concern", "scrybe_kms/template/alarms.py",
      '[Ref(watchdog), *external], EvaluationPeriods=1', '[Ref(alarm_topic), *external], EvaluationPeriods=1'),
    M("rule without a dead-letter queue", "scrybe_kms/template/alarms.py",
      "                DeadLetterConfig=events.DeadLetterConfig(Arn=dead_letter_arn),\n", ""),
    M("bucket policies deleted with the stack", "scrybe_kms/template/bucket.py",
      '                        DeletionPolicy="Retain", UpdateReplacePolicy="Retain")',
      '                        DeletionPolicy="Delete", UpdateReplacePolicy="Retain")'),
    M("changes to the alarm topic reported only through that topic", "scrybe_kms/template/alarms.py",
      "[*actions[:1], watchdog, *actions[1:]] if title in also_watchdog else actions", "actions"),
    M("stack updates may retarget aliases", "scrybe_kms/derived/stack_policy.py",
      '        statements.append({"Effect": "Deny", "Principal": "*", "Action": "Update:*",',
      '        statements.append({"Effect": "Allow", "Principal": "*", "Action": "Update:*",'),
    # Derived and deploy
    M("stack policy no longer protects the controls", "scrybe_kms/derived/stack_policy.py",
      '{"Effect": "Deny", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],',
      '{"Effect": "Allow", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],'),
    # Disaster recovery (issue 12)
    M("admins may replicate the PHI key into any region", "scrybe_kms/template/key_statements.py",
      "conditions(StringEquals(keys.REPLICA_REGION, list(regions))))", "None)"),
    M("delete markers replicated (one added at home hides the DR copy)", "scrybe_kms/template/replication.py",
      'DeleteMarkerReplication(Status="Disabled")', 'DeleteMarkerReplication(Status="Enabled")'),
    M("replica key deleted with its stack", "scrybe_kms/template/key.py",
      '        DeletionPolicy="Retain",\n        UpdateReplacePolicy="Retain",\n    ))\n    return KeyHandle(key, policy)',
      '        DeletionPolicy="Delete",\n        UpdateReplacePolicy="Retain",\n    ))\n    return KeyHandle(key, policy)'),
    M("replication role may use the keys on any object", "scrybe_kms/template/replication.py",
      '_through_s3(Ref("AWS::AccountId")),\n                            _s3_context(bucket_name_sub)))',
      '_through_s3(Ref("AWS::AccountId"))))'),
    M("DR regions forward their events to their own bus", "scrybe_kms/template/replica_stack.py",
      "events:{cfg.aws_region}:", "events:{region}:"),
    M("a failed write leaves a mix of old and new files", "scrybe_kms/cli/files.py",
      "                for undone, old in reversed(done):", "                for undone, old in []:"),
)


def run_one(mutation: Mutation, scratch: Path) -> tuple[str, str]:
    """``(verdict, detail)``: CAUGHT with the first failing test, SURVIVED, or STALE."""
    target = scratch / mutation.path
    original = target.read_text(encoding="utf-8")
    if original.count(mutation.old) != 1:
        return "STALE", f"snippet found {original.count(mutation.old)} times in {mutation.path}"
    target.write_text(original.replace(mutation.old, mutation.new), encoding="utf-8")
    try:
        returncode, failed, last = run_suite(scratch)
    finally:
        target.write_text(original, encoding="utf-8")
    if returncode == 0 or not failed:
        return "SURVIVED", last
    return "CAUGHT", failed[0]


def run_suite(scratch: Path) -> tuple[int, list[str], str]:
    """The suite without emulator tests and golden comparisons, stopping at the first failure."""
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not emulator", "-p", "no:cacheprovider",
               "-o", "addopts=", "--ignore=tests/compliance", "--ignore=tests/e2e", "-rfE",
               *(f"--deselect={g}" for g in GOLDEN), "tests"]
    result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=900, check=False)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
    lines = result.stdout.strip().splitlines()
    return result.returncode, failed, lines[-1] if lines else result.stderr.strip()[-300:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, action="append", help="run mutation N (1-based; repeatable)")
    args = parser.parse_args(argv)
    chosen = [(i, m) for i, m in enumerate(MUTATIONS, 1) if not args.only or i in args.only]
    with tempfile.TemporaryDirectory(prefix="scrybe-kms-mutation-") as tmp:
        scratch = Path(tmp) / "repo"
        shutil.copytree(ROOT, scratch, ignore=shutil.ignore_patterns(*SKIP))
        returncode, failed, last = run_suite(scratch)
        if returncode != 0:
            print(f"the unmutated suite fails ({', '.join(failed) or last}); fix that first")
            return 2
        caught = 0
        for number, mutation in chosen:
            start = time.monotonic()
            verdict, detail = run_one(mutation, scratch)
            caught += verdict == "CAUGHT"
            print(f"{number:2d}. {verdict:<8} {mutation.what} [{mutation.path}] -> {detail} "
                  f"({time.monotonic() - start:.0f} s)", flush=True)
    print(f"mutation score: {caught}/{len(chosen)} caught by a test other than the golden files")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
