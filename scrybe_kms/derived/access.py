"""Who can do what with the keys, evaluated the way AWS evaluates a key policy.

The rendered key policy (intrinsic functions resolved for the configured account and region) is
evaluated request by request with :mod:`scrybe_kms.derived.evaluator` (explicit deny wins, then any
allow, else deny; conditions as AWS documents them, missing keys included). Each role is assumed to
hold an IAM policy allowing ``kms:*`` on ``*``, the worst case: that matters only if a key policy
names the account, which these do not, so the result shows what the key policy alone permits.

"This trail" and "this log group" come from the rendered template (the trail's ``TrailName``, the
log group's ``LogGroupName``), built into ARNs the way AWS builds them, never from the naming code
that also wrote the key policy: a wrong ARN in the policy then shows up as a deny.
The same evaluation feeds the tests and ``out/<env>.access.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.evaluator import Decision, Request, prepare
from scrybe_kms.derived.evaluator import evaluate as evaluate_request
from scrybe_kms.derived.scenarios import KEY_ID, Scenario, key_arn, resolve, scenarios, values

__all__ = [
    "ACTIONS",
    "KEY_ID",
    "Scenario",
    "access_markdown",
    "evaluate",
    "key_decisions",
    "matrix_rows",
    "resolve",
    "scenarios",
]

#: The actions every matrix evaluates, in display order, with what each does (the legend).
ACTION_MEANINGS: dict[str, str] = {
    "kms:Encrypt": "encrypt up to 4 KB of data directly under the key",
    "kms:Decrypt": "decrypt data, or a data key, encrypted under the key",
    "kms:ReEncryptFrom": "re-encrypt ciphertext that is under this key (to any key)",
    "kms:ReEncryptTo": "re-encrypt ciphertext from any key so it is under this key",
    "kms:GenerateDataKey": "get a new data key, in plaintext and encrypted under the key",
    "kms:GenerateDataKeyWithoutPlaintext": "get a new data key, encrypted under the key only",
    "kms:DescribeKey": "read the key's metadata (ARN, state, creation date)",
    "kms:CreateGrant": "let another principal use the key outside the key policy",
    "kms:ReplicateKey": "copy a multi-Region key to another region, under a key policy the caller writes",
    "kms:PutKeyPolicy": "replace the key policy",
    "kms:DisableKey": "switch the key off: every use fails until it is enabled again",
    "kms:ScheduleKeyDeletion": "schedule the key's deletion after a 7 to 30 day wait",
    "kms:CancelKeyDeletion": "cancel a scheduled deletion",
    "kms:DisableKeyRotation": "turn off automatic rotation of the key material",
    "kms:TagResource": "add or change the key's tags",
    "kms:GetKeyPolicy": "read the key policy",
    "kms:GetKeyRotationStatus": "read whether automatic rotation is on",
    "kms:CreateAlias": "give the key a new alias",
    "kms:UpdateAlias": "point an existing alias at another key",
    "kms:DeleteAlias": "remove an alias",
}
ACTIONS: tuple[str, ...] = tuple(ACTION_MEANINGS)
#: Operations whose requests carry an encryption context; KMS supplies no
#: ``kms:EncryptionContext:*`` key to any other (DescribeKey, management), so a condition on it
#: can never match them.
ENCRYPTION_CONTEXT_ACTIONS = frozenset({
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext",
})


def key_decisions(template: Mapping[str, Any], cfg: EnvironmentConfig, key_title: str,
               region: str | None = None, callers: list[Scenario] | None = None) -> dict[str, dict[str, Decision]]:
    policy = prepare(resolve(template["Resources"][key_title]["Properties"]["KeyPolicy"],
                             values(cfg, key_title, region)))
    grid: dict[str, dict[str, Decision]] = {}
    for scenario in scenarios(cfg, template) if callers is None else callers:
        row = {}
        for action in ACTIONS:
            context = {k: v for k, v in scenario.context.items()
                       if action in ENCRYPTION_CONTEXT_ACTIONS or not k.startswith("kms:EncryptionContext:")}
            request = Request(principal_arn=scenario.principal if scenario.kind == "role" else None,
                              service=scenario.principal if scenario.kind == "service" else None,
                              action=action, resource=key_arn(cfg, region), context=context)
            row[action] = evaluate_request(policy, request, iam_allows=scenario.kind == "role")
        grid[scenario.label] = row
    return grid


def evaluate(template: Mapping[str, Any], cfg: EnvironmentConfig,
             key_title: str = "PhiKey") -> dict[str, dict[str, bool]]:
    """``{scenario label: {action: allowed}}`` for one key of a rendered template."""
    return {label: {a: d.allowed for a, d in row.items()}
            for label, row in key_decisions(template, cfg, key_title).items()}


def matrix_rows(grid: Mapping[str, Mapping[str, bool]]) -> list[tuple[str, list[str]]]:
    """Rows for people: the two emergency rows fold into one whose cells say 'MFA only'."""
    rows: list[tuple[str, list[str]]] = []
    for label in grid:
        if label == "emergency role without MFA":
            continue
        if label == "emergency role with MFA":
            without = grid["emergency role without MFA"]
            rows.append(("emergency role", [
                ("MFA only" if grid[label][a] and not without[a] else "allow" if without[a] else "deny")
                for a in ACTIONS]))
            continue
        rows.append((label, ["allow" if grid[label][a] else "deny" for a in ACTIONS]))
    return rows


def _alarm(template: Mapping[str, Any], metric: str) -> str | None:
    """The alarm on ``metric`` in the rendered templates given (the key stack's, and the alarm
    stack's under ``"__alarm_stack__"``, where the alarms live)."""
    stacks = [template, template.get("__alarm_stack__", {"Resources": {}})]
    names = [r["Properties"].get("AlarmName") for t in stacks for r in t["Resources"].values()
             if r["Type"] == "AWS::CloudWatch::Alarm" and r.get("Properties", {}).get("MetricName") == metric]
    return str(names[0]) if names else None


def _sids(decisions: Mapping[str, Mapping[str, Decision]], label: str, actions: tuple[str, ...]) -> str:
    sids = sorted({s for a in actions for s in decisions[label][a].statements if decisions[label][a].allowed})
    return ", ".join(f"`{s}`" for s in sids)


def _statements(template: Mapping[str, Any], key_title: str, sids: set[str]) -> list[Mapping[str, Any]]:
    statements = template["Resources"][key_title]["Properties"]["KeyPolicy"]["Statement"]
    return [s for s in ([statements] if isinstance(statements, Mapping) else statements) if s.get("Sid") in sids]


def _bucket_key(template: Mapping[str, Any]) -> bool:
    buckets = [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    return any(rule.get("BucketKeyEnabled") is True for b in buckets
               for rule in b.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []))


def _notes(template: Mapping[str, Any], grids: Mapping[str, Mapping[str, Mapping[str, Decision]]]) -> list[str]:
    """One line per non-obvious cell, written only when the evaluated matrix shows that cell."""
    notes: list[str] = []
    ok = {key: {label: {a: d.allowed for a, d in row.items()} for label, row in g.items()} for key, g in grids.items()}
    phi, audit = ok["PhiKey"], ok["AuditKey"]
    admins = [label for label in phi if label.startswith("admin role ")]
    if any(phi[a]["kms:PutKeyPolicy"] for a in admins):
        alarm = _alarm(template, "PhiKeyPolicyChanged")
        watch = (f"the alarm `{alarm}` fires on every PutKeyPolicy call on the PHI key" if alarm else
                 "NO alarm in this template watches PutKeyPolicy: review policy changes by other means")
        notes.append("**Admin roles, PutKeyPolicy allowed although they may not use the key.** KMS's lockout "
                     "safety check rejects a key policy that would not let its author call PutKeyPolicy later "
                     "(https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html), so the "
                     "admins keep it. An admin could use it to grant itself Decrypt; " + watch + ".")
    if admins and not any(phi[a]["kms:CreateGrant"] for a in admins):
        notes.append("**Admin roles, CreateGrant denied.** A grant gives key use outside the key policy, so an "
                     "admin holding CreateGrant could grant itself Decrypt without any policy change.")
    if admins and any(phi[a]["kms:UpdateAlias"] for a in admins):
        notes.append("**Admin roles, CreateAlias / UpdateAlias / DeleteAlias allowed.** CloudFormation creates "
                     "the aliases with the deploying admin's credentials. An alias can therefore be pointed at "
                     "another key, so the application is given the key ARN (`AWS_KMS_KEY_ARN`), never the alias "
                     "(docs/decisions.md D12).")
    through = [label for label in phi if " through " in label and "grant not for" not in label
               and "CloudTrail" not in label]
    if through:
        notes.append("**Roles through a service: allow; directly: deny.** Their statements require "
                     "`kms:ViaService` (the service's endpoint in this region) and `kms:CallerAccount`; the "
                     "rows through a service carry that context as the service would. CreateGrant is allowed "
                     "only through services that attach the key with grants (RDS, DynamoDB, EBS, Backup, "
                     "Lambda) and only with `kms:GrantIsForAWSResource` (docs/decisions.md D14, D18).")
    if any("reading a CloudTrail log file" in label for label in phi):
        notes.append("**Auditors: Decrypt of CloudTrail log files through S3 only.** The statement CloudTrail "
                     "documents for log readers (`kms:EncryptionContext:aws:cloudtrail:arn` present), limited "
                     "to requests S3 makes; any other Decrypt, and every other action on either key, is denied "
                     "(docs/decisions.md D16).")
    if any("(service-linked role)" in label and any(row.values()) for label, row in phi.items()):
        notes.append("**AWS Config and IAM Access Analyzer: metadata only.** Allowed to the account principal "
                     "narrowed to each service-linked role with `aws:PrincipalArn` and `kms:CallerAccount`, so "
                     "the policy deploys where those roles do not exist yet (docs/decisions.md D15).")
    federated = [label for label in phi if label.startswith("emergency role (federated")]
    if federated:
        notes.append("**Emergency role (federated): allow.** Sessions from SAML, IAM Identity Center or OIDC "
                     "never carry `aws:MultiFactorAuthPresent`; MFA is enforced by the identity provider "
                     "(docs/decisions.md D17), and every use raises the `EmergencyRoleUsed` alarm.")
    if "emergency role with MFA" in phi:
        alarm = _alarm(template, "EmergencyRoleUsed")
        notes.append("**Emergency role, MFA only.** `kms:*` under `Bool aws:MultiFactorAuthPresent = true`: a "
                     "session without MFA, or without the key at all (SAML, IAM Identity Center or web-identity "
                     "sign-in, for which `emergency_access_mfa: identity-provider` exists), is denied."
                     + (f" Every use raises the alarm `{alarm}`." if alarm else ""))
    if phi["CloudTrail, this trail"]["kms:Decrypt"]:
        why = ("A bucket in this template uses an S3 Bucket Key" if _bucket_key(template) else
               "No bucket in this template uses an S3 Bucket Key, so this may be unneeded")
        notes.append("**CloudTrail, this trail: Decrypt allowed** (" + _sids(grids["PhiKey"], "CloudTrail, this "
                     "trail", ("kms:Decrypt",)) + "). AWS requires kms:Decrypt for CloudTrail to create or update "
                     "a trail delivering to a bucket with an S3 Bucket Key "
                     "(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/"
                     "create-kms-key-policy-for-cloudtrail.html). "
                     f"{why}. `aws:SourceArn` limits it to this trail; another trail is denied.")
    if phi["CloudTrail, this trail"]["kms:GenerateDataKeyWithoutPlaintext"]:
        notes.append("**CloudTrail, GenerateDataKeyWithoutPlaintext allowed.** AWS's documented statement allows "
                     "`kms:GenerateDataKey*`, which covers it; both conditions (this trail's `aws:SourceArn`, a "
                     "CloudTrail encryption context) still apply.")
    for label in ("CloudWatch alarms (topic publish)", "EventBridge (topic publish)"):
        allowed = tuple(a for a in ACTIONS if audit[label][a])
        sids = {s for a in allowed for s in grids["AuditKey"][label][a].statements}
        if allowed and not any("Condition" in s for s in _statements(template, "AuditKey", sids)):
            notes.append(f"**{label}, audit key, no condition** ({_sids(grids['AuditKey'], label, allowed)}). The "
                         "service publishes to the alarm topic, which SNS encrypts with the audit key; AWS's "
                         "statement for this has no condition key "
                         "(https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). The audit key "
                         "protects alarm messages and the trail's log copy, never PHI.")
    logs = audit["CloudWatch Logs, this log group"]
    if logs["kms:Decrypt"] and not logs["kms:DescribeKey"]:
        notes.append("**CloudWatch Logs, DescribeKey denied.** AWS's documented statement conditions "
                     "`kms:Describe*` on the log group's encryption context, which DescribeKey requests never "
                     "carry; CloudWatch Logs needs only the crypto actions.")
    if not any(audit["CloudTrail, this trail"].values()):
        notes.append("**CloudTrail, audit key: deny.** CloudTrail encrypts log files with the PHI key; the copy in "
                     "CloudWatch Logs is encrypted by CloudWatch Logs with the audit key.")
    if any(label.startswith("replication role") for label in phi):
        notes.append("**Replication role: Decrypt of the audit bucket's objects through S3 only.** Named by "
                     "`aws:PrincipalArn` on the account principal, so a role recreated under its fixed name keeps "
                     "access to the replicas in other regions; each DR region's replica lets it only Encrypt "
                     "that region's copies (docs/decisions.md D48).")
    if not any(g["other role, same account (IAM kms:*)"][a] for g in (phi, audit) for a in ACTIONS):
        notes.append("**Other roles, even with IAM `kms:*`: deny.** Neither key policy delegates to the account "
                     "(the account appears only narrowed by `aws:PrincipalArn` to the compliance roles and, with "
                     "DR, the replication role), so no IAM policy can grant use of these keys "
                     "(https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html).")
    return notes


def access_markdown(template: Mapping[str, Any] | str, cfg: EnvironmentConfig, *,
                    template_sha256: str | None = None, alarm_template: Mapping[str, Any] | str | None = None) -> str:
    """``out/<env>.access.md``: both keys' matrices, generated from :func:`evaluate`. Pass the rendered
    template text (its SHA-256 is recorded), or a parsed template and ``template_sha256``; and the
    template holding the alarms (the filter stack's), so the notes can name the alarms that watch a cell."""
    if isinstance(template, str):
        template_sha256 = hashlib.sha256(template.encode("utf-8")).hexdigest()
    parsed: Mapping[str, Any] = json.loads(template) if isinstance(template, str) else template
    if alarm_template is not None:
        parsed = {**parsed, "__alarm_stack__": json.loads(alarm_template) if isinstance(alarm_template, str)
                  else alarm_template}
    digest = f"SHA-256 `{template_sha256}`" if template_sha256 else "SHA-256 not recorded"
    lines = [
        f"# Key access matrix: {cfg.environment}",
        "",
        f"Generated by `scrybe-kms build` from `{cfg.environment}.json` ({digest}) by evaluating each key",
        "policy the way AWS documents it: an applicable Deny wins, then any Allow, else deny. Do not edit.",
        "Every role is assumed to hold an IAM policy allowing `kms:*` on `*`: the cells show what the key",
        "policy alone permits. Service rows use the request context listed at the end of this file.",
        "",
        "| cell | meaning |",
        "| --- | --- |",
        "| allow | the key policy lets this caller do this |",
        "| deny | it does not (no statement allows it, or one denies it) |",
        "| MFA only | allowed only when the session has MFA (`aws:MultiFactorAuthPresent` is `true`) |",
        "",
        "| column | what the action does |",
        "| --- | --- |",
    ]
    lines += [f"| {a.removeprefix('kms:')} | {meaning} |" for a, meaning in ACTION_MEANINGS.items()]
    lines.append("")
    grids = {}
    for title, heading in (("PhiKey", "PHI master key"), ("AuditKey", "Audit-path key")):
        grids[title] = key_decisions(parsed, cfg, title)
        grid = {label: {a: d.allowed for a, d in row.items()} for label, row in grids[title].items()}
        lines += [f"## {heading} (`{title}`)", "",
                  "| principal | " + " | ".join(a.removeprefix("kms:") for a in ACTIONS) + " |",
                  "| --- |" + " --- |" * len(ACTIONS)]
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in matrix_rows(grid)]
        lines.append("")
    lines += ["## Notes", ""] + [f"- {note}" for note in _notes(parsed, grids)] + [""]
    lines += ["Principals:", ""]
    lines += [f"- {s.label}: `{s.principal}`" + (f" with `{json.dumps(dict(s.context), sort_keys=True)}`"
                                                   if s.context else "") for s in scenarios(cfg, parsed)]
    return "\n".join(lines) + "\n"
