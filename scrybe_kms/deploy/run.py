"""``scrybe-kms deploy`` and ``scrybe-kms env-config``: a careful wrapper around change sets.

An environment has two stacks: the key stack (``scrybe-kms-<env>``: keys, aliases, buckets, trail,
log group) and the alarm stack (``scrybe-kms-<env>-alarms``), which imports the key stack's
exports and so is deployed after it. For each, in that order: build (or read) the template, refuse
locally anything that would replace or remove a protected resource, create a change set, print
the plan, refuse again on what the change set says, set the stack policy, execute, stream stack
events, then apply the guards and print the outputs. A failure or refusal stops everything: the
alarm stack is not touched after the key stack failed. Nothing here deletes a stack or a resource.

The parts: ``session`` (which account and region), ``stack`` (what its status means),
``changeset``, ``refusals``, ``exports``, ``events``, ``guards`` and ``envfile``. Only this package
imports boto3, and the CLI imports it only for these commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from scrybe_kms.config import EnvironmentConfig, load_stack, naming
from scrybe_kms.deploy import changeset
from scrybe_kms.deploy.envfile import write_env_outputs
from scrybe_kms.deploy.errors import DeployError, Refused
from scrybe_kms.deploy.events import execute_and_follow
from scrybe_kms.deploy.exports import exported_names, missing_exports
from scrybe_kms.deploy.guards import apply_guards, protect_from_termination, set_stack_policy
from scrybe_kms.deploy.options import DeployOptions, Say
from scrybe_kms.deploy.refusals import changes_from, format_plan, local_problems, refusals
from scrybe_kms.deploy.session import AwsSession, SessionFactory, open_session
from scrybe_kms.deploy.stack import Stack, StackState, deployed_template, read_stack
from scrybe_kms.template import render, render_alarms

__all__ = ["DeployError", "DeployOptions", "Refused", "deploy", "env_config"]

REFUSING = "refusing to deploy {}: this change would replace or remove protected resources; nothing was "

Verdict = Literal["no changes", "plan", "execute"]


@dataclass(frozen=True)
class Target:
    """One stack to deploy and the template it gets. Only the key stack's outputs go to ``.env``."""

    name: str
    template: dict[str, Any]
    key_stack: bool


def deploy(opts: DeployOptions, out: TextIO = sys.stdout, session_factory: SessionFactory = open_session) -> int:
    """Deploy the key stack, then the alarm stack (or just the one ``opts.stack`` names)."""
    say, cfg = _printer(out), _config(opts)
    targets = _targets(opts, cfg)  # every template is read before the first AWS call
    aws = session_factory(opts, cfg)
    key = _key_stack(opts, cfg)
    pending: set[str] = set()  # what the key stack will export once the plan just shown is executed
    for target in targets:
        missing = missing_exports(aws.cloudformation, target.template)
        if missing and set(missing) <= pending:
            say(f"{target.name} will be planned after {key} is deployed: it imports {', '.join(missing)}, "
                f"which {key} does not export yet")
            break
        if missing:
            raise DeployError(f"{target.name} imports {', '.join(missing)}, which no stack in {cfg.aws_region} "
                              f"exports: deploy the key stack {key} first")
        verdict = _deploy_stack(aws, cfg, opts, target, say)
        pending = exported_names(target.template) if verdict == "plan" else set()
    return 0


def env_config(opts: DeployOptions, out: TextIO = sys.stdout, session_factory: SessionFactory = open_session) -> int:
    """Print (and with --env-file, merge into a file) the .env lines of an existing key stack."""
    cfg = _config(opts)
    aws = session_factory(opts, cfg)
    name = _key_stack(opts, cfg)
    current = read_stack(aws.cloudformation, name)
    if not current.state.exists:
        raise DeployError(f"stack {name} does not exist in {cfg.aws_region}; deploy it first")
    if "EnvironmentConfig" not in current.outputs:
        raise DeployError(f"stack {name} has no EnvironmentConfig output")
    if opts.env_file is None:
        out.write(current.outputs["EnvironmentConfig"].rstrip("\n") + "\n")
    else:
        _write_env(opts, current, _printer(out))
    return 0


def _deploy_stack(aws: AwsSession, cfg: EnvironmentConfig, opts: DeployOptions, target: Target, say: Say) -> Verdict:
    """One stack, start to finish; raises if it cannot be deployed, was refused or failed."""
    cf, name, new = aws.cloudformation, target.name, target.template
    current = read_stack(cf, name)
    if current.state.busy:
        raise DeployError(f"stack {name} is busy ({current.status}); wait for it to finish and run again")
    if current.state is StackState.ROLLBACK_COMPLETE:
        raise DeployError(f"stack {name} is ROLLBACK_COMPLETE (its first create failed) and cannot be updated. "
                          "Read its events, fix the cause, then delete it yourself (what it retains, such as keys "
                          "and buckets, stays) and deploy again.")
    exists = current.state.exists
    old = deployed_template(cf, name) if exists else {}
    say(f"{'update' if exists else 'create'} {name} in {cfg.aws_region} (account {cfg.account_id})"
        + (f" via {aws.endpoint}" if aws.endpoint else ""))

    # The local comparison needs no AWS call: refuse before any change set exists.
    early = local_problems(old, new, cfg.aws_region)
    if early:
        raise Refused(REFUSING.format(name) + "created or executed.\n"
                      + "\n".join(f"  {title}: {why}" for title, why in sorted(early.items())))

    # Compact JSON keeps the body well inside the 51,200-byte inline limit.
    body = json.dumps(new, separators=(",", ":"), sort_keys=True)
    description = f"scrybe-kms deploy {cfg.environment}" + ("" if target.key_stack else " (alarm stack)")
    change_set = changeset.create(cf, name, body, "UPDATE" if exists else "CREATE", description, opts.poll_seconds)
    try:
        verdict = _review(change_set, old, new, opts, cfg, say, name)
        if verdict == "execute" and exists:
            set_stack_policy(aws, name, new, say)  # the stack policy guards this very update
    except BaseException:
        _discard_after_error(cf, name, change_set, say)
        raise
    if verdict != "execute":
        changeset.discard(cf, name, change_set)
        if verdict == "no changes" and not opts.plan_only:
            settled = read_stack(cf, name)
            apply_guards(aws, cfg, old, settled, say)
            if target.key_stack:
                _write_env(opts, settled, say)
        say("plan only: nothing was executed" if verdict == "plan" else f"no changes: {name} is up to date")
        return verdict

    settled = execute_and_follow(cf, name, change_set.name, say, opts.poll_seconds)
    if not exists:
        set_stack_policy(aws, name, new, say)
    protect_from_termination(aws, cfg, settled)
    say(f"{name}: {settled.status}")
    shown = {key: value for key, value in sorted(settled.outputs.items()) if key != "EnvironmentConfig"}
    if shown:
        say("outputs:\n" + "\n".join(f"  {key} = {value}" for key, value in shown.items()))
    if target.key_stack:
        _write_env(opts, settled, say)
    return verdict


def _review(change_set: changeset.ChangeSet, old: dict[str, Any], new: dict[str, Any], opts: DeployOptions,
            cfg: EnvironmentConfig, say: Say, name: str) -> Verdict:
    """What to do with a change set; raises if it failed or would replace a protected resource."""
    if change_set.no_changes:
        return "no changes"
    if change_set.failed:
        raise DeployError(f"{name}: CloudFormation could not create the change set: {change_set.reason}")
    changes = changes_from(change_set.changes)
    say(format_plan(changes))
    problems = refusals(changes, old, new, cfg.aws_region)
    if problems:
        raise Refused(REFUSING.format(name) + "executed and the change set was deleted.\n"
                      + "\n".join(f"  {p}" for p in problems))
    return "plan" if opts.plan_only else "execute"


def _discard_after_error(cf: Any, name: str, change_set: changeset.ChangeSet, say: Say) -> None:
    try:
        changeset.discard(cf, name, change_set)
    except DeployError as exc:  # the first error is the one to report
        say(f"WARNING: change set {change_set.name} could not be deleted: {exc}")


def _write_env(opts: DeployOptions, stack: Stack, say: Say) -> None:
    if opts.env_file is not None:
        write_env_outputs(opts.env_file, stack.outputs, stack.name)
        say(f"wrote the AWS_KMS_* lines to {opts.env_file}")


def _printer(out: TextIO) -> Say:
    return lambda text: print(text, file=out, flush=True)


def _config(opts: DeployOptions) -> EnvironmentConfig:
    return load_stack(opts.stacks_dir / f"{opts.environment}.py")


def _key_stack(opts: DeployOptions, cfg: EnvironmentConfig) -> str:
    return opts.stack_name or naming.stack_name(cfg.environment)


def _targets(opts: DeployOptions, cfg: EnvironmentConfig) -> list[Target]:
    """The stacks to deploy, key stack first, each with its template; contradictory options refused."""
    keys, alarms = opts.stack in ("all", "keys"), opts.stack in ("all", "alarms")
    for option, given, stack, deployed in (("--template-file", opts.template_file, "key", keys),
                                           ("--env-file", opts.env_file, "key", keys),
                                           ("--alarms-template-file", opts.alarms_template_file, "alarm", alarms)):
        if given is not None and not deployed:
            raise DeployError(f"{option} is for the {stack} stack, which --stack {opts.stack} does not deploy")
    key_name = _key_stack(opts, cfg)
    alarm_name = f"{opts.stack_name}-alarms" if opts.stack_name else naming.alarm_stack_name(cfg.environment)
    found: list[Target] = []
    if keys:
        found.append(Target(key_name, _template(opts.template_file, "--template-file", render, cfg), True))
    if alarms:
        found.append(Target(alarm_name, _template(opts.alarms_template_file, "--alarms-template-file",
                                                  render_alarms, cfg), False))
    return found


def _template(path: Path | None, option: str, build: Callable[[EnvironmentConfig], str],
              cfg: EnvironmentConfig) -> dict[str, Any]:
    if path is None:
        return dict(json.loads(build(cfg)))
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise DeployError(f"could not read {option} {path}: {exc}") from None
