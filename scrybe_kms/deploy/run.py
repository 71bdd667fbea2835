"""``scrybe-kms deploy`` and ``scrybe-kms env-config``: a careful wrapper around a change set.

Builds (or reads) the template, creates a change set, prints the plan, refuses anything that
would replace or remove a protected resource, executes, streams stack events, then applies the
stack policy and termination protection and prints the outputs. It never deletes a stack or a
resource: on failure it reports what CloudFormation did and stops.

Only this module imports boto3, and the CLI imports it only for these commands.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
import botocore.exceptions as boto_errors

from scrybe_kms.config import EnvironmentConfig, load_stack, naming
from scrybe_kms.deploy.envfile import parse_env_lines, write_env_file
from scrybe_kms.deploy.errors import DeployError, Refused, _aws_errors
from scrybe_kms.deploy.refusals import changes_from, format_plan, local_problems, refusals
from scrybe_kms.derived.stack_policy import stack_policy
from scrybe_kms.template import render

__all__ = ["DeployError", "DeployOptions", "Refused", "deploy", "env_config"]

CAPABILITIES = ["CAPABILITY_IAM"]
FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_FAILED", "UPDATE_ROLLBACK_COMPLETE",
          "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED"}
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
NO_CHANGES = ("didn't contain changes", "No updates are to be performed", "does not contain changes")
NOT_IMPLEMENTED = {"InternalFailure", "NotImplemented", "NotImplementedException"}


@dataclass(frozen=True)
class DeployOptions:
    environment: str
    stacks_dir: Path = Path("stacks")
    template_file: Path | None = None
    stack_name: str | None = None
    plan_only: bool = False
    env_file: Path | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    poll_seconds: float = 1.0


class _Deployment:
    def __init__(self, opts: DeployOptions, out: TextIO) -> None:
        self.opts, self.out = opts, out
        self.cfg: EnvironmentConfig = load_stack(opts.stacks_dir / f"{opts.environment}.py")
        self.stack = opts.stack_name or naming.stack_name(self.cfg.environment)
        with _aws_errors("start an AWS session"):
            # botocore reads AWS_DEFAULT_REGION; the CLI v2 and most SDKs also honour AWS_REGION.
            region = opts.region or os.environ.get("AWS_REGION") or None
            self.session = boto3.Session(profile_name=opts.profile, region_name=region)
        self.endpoint = opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self._check_session()
        self.cf = self._client("cloudformation")

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _client(self, service: str) -> Any:
        kwargs = {"endpoint_url": self.opts.endpoint_url} if self.opts.endpoint_url else {}
        return self.session.client(service, **kwargs)

    def _check_session(self) -> None:
        region = self.session.region_name
        if region is None:
            raise DeployError(f"no AWS region configured: pass --region {self.cfg.aws_region} or set AWS_REGION "
                              "(or AWS_DEFAULT_REGION, or the profile's region)")
        if region != self.cfg.aws_region:
            raise DeployError(f"the AWS session's region is {region}, but the {self.cfg.environment} configuration "
                              f"deploys to {self.cfg.aws_region}; pass --region {self.cfg.aws_region}")
        with _aws_errors("read the caller identity"):
            if self.session.get_credentials() is None:
                raise boto_errors.NoCredentialsError()
            account = self._client("sts").get_caller_identity()["Account"]
        if account != self.cfg.account_id:
            raise DeployError(f"the AWS credentials are for account {account}, but the {self.cfg.environment} "
                              f"configuration is for account {self.cfg.account_id}")

    # -- stack state -------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        with _aws_errors(f"describe stack {self.stack}"):
            return dict(self.cf.describe_stacks(StackName=self.stack)["Stacks"][0])

    def stack_status(self) -> str | None:
        try:
            return str(self.describe()["StackStatus"])
        except DeployError as exc:
            if "does not exist" in str(exc):
                return None
            raise

    def deployed_template(self) -> dict[str, Any]:
        with _aws_errors(f"read the template of {self.stack}"):
            body = self.cf.get_template(StackName=self.stack, TemplateStage="Original")["TemplateBody"]
        return body if isinstance(body, dict) else json.loads(body)

    # -- change sets -------------------------------------------------------------------------
    def create_change_set(self, body: str, change_type: str) -> tuple[str, dict[str, Any]]:
        name = f"scrybe-kms-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        with _aws_errors(f"create a change set for {self.stack}"):
            self.cf.create_change_set(
                StackName=self.stack, ChangeSetName=name, ChangeSetType=change_type, TemplateBody=body,
                Capabilities=CAPABILITIES, Description=f"scrybe-kms deploy {self.cfg.environment}")
            while True:
                described = self.cf.describe_change_set(StackName=self.stack, ChangeSetName=name)
                if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
                    break
                time.sleep(self.opts.poll_seconds)
            changes = list(described.get("Changes", []))
            token = described.get("NextToken")
            while token:
                page = self.cf.describe_change_set(StackName=self.stack, ChangeSetName=name, NextToken=token)
                changes += page.get("Changes", [])
                token = page.get("NextToken")
        described["Changes"] = changes
        return name, described

    def discard(self, change_set: str, change_type: str) -> None:
        """Remove an unexecuted change set; for a new stack, also the empty REVIEW_IN_PROGRESS
        stack CloudFormation made for it (it holds no resources)."""
        with _aws_errors(f"delete change set {change_set}"):
            self.cf.delete_change_set(StackName=self.stack, ChangeSetName=change_set)
            if change_type == "CREATE" and self.stack_status() == "REVIEW_IN_PROGRESS":
                self.cf.delete_stack(StackName=self.stack)

    # -- execution ---------------------------------------------------------------------------
    def newest_event_id(self) -> str | None:
        with _aws_errors(f"read events of {self.stack}"):
            events = self.cf.describe_stack_events(StackName=self.stack)["StackEvents"]
        return str(events[0]["EventId"]) if events else None

    def events_since(self, newest_seen: str | None) -> list[dict[str, Any]]:
        """Events after ``newest_seen``, oldest first. DescribeStackEvents pages newest first, 100
        to a page, and a fast stack can emit more than a page between two polls: read on until the
        last event already reported (usually one call)."""
        fresh: list[dict[str, Any]] = []
        with _aws_errors(f"read events of {self.stack}"):
            for page in self.cf.get_paginator("describe_stack_events").paginate(StackName=self.stack):
                for event in page["StackEvents"]:
                    if event["EventId"] == newest_seen:
                        return fresh[::-1]
                    fresh.append(event)
        return fresh[::-1]

    def _settled(self, event: dict[str, Any]) -> bool:
        """The stack's own event for a status that is not in progress: time to confirm and stop."""
        return (event.get("ResourceType") == "AWS::CloudFormation::Stack" and event["LogicalResourceId"] == self.stack
                and not event["ResourceStatus"].endswith("_IN_PROGRESS"))

    def execute(self, change_set: str) -> dict[str, Any]:
        """Execute, print each event once, and return the stack's description once it settles.

        One DescribeStackEvents call per poll; DescribeStacks only to confirm a settled status (and,
        as a safety net, every tenth poll). With the default 1 s poll the command returns about a
        second after the stack finishes; the AWS CLI's waiter checks every 30 s."""
        newest = self.newest_event_id()
        with _aws_errors(f"execute change set {change_set}"):
            self.cf.execute_change_set(StackName=self.stack, ChangeSetName=change_set)
        failures: list[str] = []
        polls = 0
        while True:
            time.sleep(self.opts.poll_seconds)
            polls += 1
            settled = False
            for event in self.events_since(newest):
                newest = event["EventId"]
                reason = event.get("ResourceStatusReason") or ""
                line = (f"  {event['Timestamp']:%H:%M:%S} {event['ResourceStatus']:<22} "
                        f"{event['LogicalResourceId']} ({event.get('ResourceType', '')}) {reason}".rstrip())
                self.say(line)
                if event["ResourceStatus"].endswith("FAILED"):
                    failures.append(line.strip())
                settled = settled or self._settled(event)
            if not (settled or polls % 10 == 0):
                continue
            stack = self.describe()
            status = stack["StackStatus"]
            if status in SUCCEEDED:
                return stack
            if status in FAILED:
                detail = "\n".join(f"  {f}" for f in failures) or "  (no failed resource events reported)"
                raise DeployError(f"deploy failed: {self.stack} is {status}. CloudFormation rolled back as it "
                                  f"does; nothing was deleted by scrybe-kms.\nfailing events:\n{detail}")

    def apply_guards(self, template: dict[str, Any], stack: dict[str, Any] | None = None) -> None:
        """Stack policy on every deploy; termination protection for staging and production
        (skipped when ``stack``, a fresh description, shows it is already on)."""
        try:
            with _aws_errors(f"set the stack policy of {self.stack}"):
                self.cf.set_stack_policy(StackName=self.stack, StackPolicyBody=json.dumps(stack_policy(template)))
        except DeployError as exc:
            # Only an emulator lacks SetStackPolicy; against AWS a missing stack policy is an error.
            if self.endpoint and any(code in str(exc) for code in NOT_IMPLEMENTED):
                self.say(f"WARNING: the endpoint {self.endpoint} does not implement SetStackPolicy; "
                         "the stack policy was NOT applied")
            else:
                raise
        if self.cfg.termination_protection and not (stack or {}).get("EnableTerminationProtection"):
            with _aws_errors(f"enable termination protection on {self.stack}"):
                self.cf.update_termination_protection(StackName=self.stack, EnableTerminationProtection=True)

    def report_outputs(self, stack: dict[str, Any]) -> dict[str, str]:
        outputs = _outputs(stack)
        self.say("outputs:")
        for key in sorted(k for k in outputs if k != "EnvironmentConfig"):
            self.say(f"  {key} = {outputs[key]}")
        return outputs

    def write_env(self, outputs: dict[str, str]) -> None:
        if self.opts.env_file is None:
            return
        if "EnvironmentConfig" not in outputs:
            raise DeployError(f"stack {self.stack} has no EnvironmentConfig output to write")
        try:
            write_env_file(self.opts.env_file, parse_env_lines(outputs["EnvironmentConfig"]))
        except OSError as exc:
            raise DeployError(f"could not write {self.opts.env_file}: {exc.strerror or exc}") from None
        self.say(f"wrote the AWS_KMS_* lines to {self.opts.env_file}")


def _outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _template(opts: DeployOptions, cfg: EnvironmentConfig) -> dict[str, Any]:
    if opts.template_file is None:
        return dict(json.loads(render(cfg)))
    try:
        return dict(json.loads(opts.template_file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise DeployError(f"could not read --template-file {opts.template_file}: {exc}") from None


def deploy(opts: DeployOptions, out: TextIO = sys.stdout) -> int:
    run = _Deployment(opts, out)
    new = _template(opts, run.cfg)
    # Compact JSON keeps the body well inside the 51,200-byte inline limit.
    body = json.dumps(new, separators=(",", ":"), sort_keys=True)
    status = run.stack_status()
    if status is not None and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise DeployError(f"stack {run.stack} is busy ({status}); wait for it to finish and run again")
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(f"stack {run.stack} is ROLLBACK_COMPLETE (its first create failed) and cannot be "
                          "updated. Read its events, fix the cause, then delete it yourself (retained keys and "
                          "buckets stay) and deploy again.")
    exists = status not in (None, "REVIEW_IN_PROGRESS")
    change_type = "UPDATE" if exists else "CREATE"
    old = run.deployed_template() if exists else {}
    run.say(f"{change_type.lower()} {run.stack} in {run.cfg.aws_region} (account {run.cfg.account_id})"
            + (f" via {run.endpoint}" if run.endpoint else ""))

    # The local comparison needs no AWS call: refuse before anything is created.
    early = local_problems(old, new, run.cfg.aws_region) if exists else {}
    if early:
        raise Refused("refusing to deploy: this change would replace or remove protected resources; nothing "
                      "was created or executed.\n" + "\n".join(f"  {t}: {why}" for t, why in sorted(early.items())))

    change_set, described = run.create_change_set(body, change_type)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        run.discard(change_set, change_type)
        if any(marker in reason for marker in NO_CHANGES):
            if not opts.plan_only:
                stack = run.describe()
                run.apply_guards(old, stack)
                run.write_env(_outputs(stack))
            run.say(f"no changes: {run.stack} is up to date")
            return 0
        raise DeployError(f"CloudFormation could not create the change set: {reason}")

    changes = changes_from(described["Changes"])
    run.say(format_plan(changes))
    problems = refusals(changes, old, new, run.cfg.aws_region)
    if problems:
        run.discard(change_set, change_type)
        raise Refused("refusing to deploy: this change would replace or remove protected resources; nothing "
                      "was executed and the change set was deleted.\n" + "\n".join(f"  {p}" for p in problems))
    if opts.plan_only:
        run.discard(change_set, change_type)
        run.say("plan only: nothing was executed")
        return 0
    if exists:
        run.apply_guards(new)  # the stack policy guards this very update
    stack = run.execute(change_set)
    run.apply_guards(new, stack)
    run.say(f"{run.stack}: {stack['StackStatus']}")
    run.write_env(run.report_outputs(stack))
    return 0


def env_config(opts: DeployOptions, out: TextIO = sys.stdout) -> int:
    """Print (and with --env-file, merge into a file) the .env lines of an existing stack."""
    run = _Deployment(opts, out)
    if run.stack_status() is None:
        raise DeployError(f"stack {run.stack} does not exist in {run.cfg.aws_region}; deploy it first")
    outputs = _outputs(run.describe())
    if "EnvironmentConfig" not in outputs:
        raise DeployError(f"stack {run.stack} has no EnvironmentConfig output")
    if opts.env_file is None:
        out.write(outputs["EnvironmentConfig"].rstrip("\n") + "\n")
    else:
        run.write_env(outputs)
    return 0

