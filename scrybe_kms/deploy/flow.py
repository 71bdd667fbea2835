"""One stack's deploy: follow, refuse locally, look for names in the way, plan, refuse, guard,
execute, apply guards (and ``--adopt``'s import first). :mod:`scrybe_kms.deploy.run` calls it for
the key stack, then the alarm stack."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.deploy import changeset
from scrybe_kms.deploy.adopt import find_retained
from scrybe_kms.deploy.envfile import write_env_outputs
from scrybe_kms.deploy.errors import DeployError, Refused
from scrybe_kms.deploy.events import execute_and_follow, follow, newest_event_id
from scrybe_kms.deploy.guards import apply_guards, protect_from_termination, set_stack_policy
from scrybe_kms.deploy.journal import Journal, no_interrupts
from scrybe_kms.deploy.options import DeployOptions, Say
from scrybe_kms.deploy.preflight import check_names
from scrybe_kms.deploy.refusals import changes_from, format_plan, local_problems, refusals
from scrybe_kms.deploy.session import AwsSession
from scrybe_kms.deploy.stack import Stack, StackState, deployed_template, read_stack

__all__ = ["REFUSING", "Target", "adopt_retained", "deploy_stack", "write_env"]

REFUSING = "refusing to deploy {}: this change would replace or remove protected resources; nothing was "

Verdict = Literal["no changes", "plan", "execute"]


@dataclass(frozen=True)
class Target:
    """One stack to deploy and the template it gets. Only the key stack's outputs go to ``.env``.
    ``kind`` names it in plans (``key``, ``filter``, ``alarm``, ``replica``); ``region`` is set for a
    DR region's stack; ``parameters`` are the values its change set passes (every one, always)."""

    name: str
    template: dict[str, Any]
    key_stack: bool
    kind: str = "key"
    region: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)


def _settled_start(aws: AwsSession, opts: DeployOptions, name: str, say: Say) -> Stack:
    """The stack as this deploy starts on it: one that another (or an interrupted) run left in
    progress is followed to the end first, so its guards and ``.env`` lines are applied now."""
    current = read_stack(aws.cloudformation, name)
    if not current.state.busy:
        return current
    say(f"{name} is {current.status} (another deploy, or one that was interrupted): following it to the end first")
    since = newest_event_id(aws.cloudformation, name, opts.poll_seconds)
    follow(aws.cloudformation, name, since, say, opts.poll_seconds)
    return read_stack(aws.cloudformation, name, opts.poll_seconds)


def deploy_stack(aws: AwsSession, cfg: EnvironmentConfig, opts: DeployOptions, target: Target, say: Say,
                  journal: Journal) -> Verdict:
    """One stack, start to finish; raises if it cannot be deployed, was refused or failed."""
    cf, name, new = aws.cloudformation, target.name, target.template
    current = _settled_start(aws, opts, name, say)
    if current.state is StackState.ROLLBACK_COMPLETE:
        adopt = (f", and `scrybe-kms deploy {cfg.environment} --adopt` brings those back under a new stack instead "
                 "of creating new keys" if target.key_stack else "")
        raise DeployError(f"stack {name} is ROLLBACK_COMPLETE (its first create failed) and cannot be updated. "
                          "Read its events and fix the cause, then delete it yourself: what it created and retains "
                          f"(keys, aliases, buckets, log group) stays{adopt}.")
    exists = current.state.exists
    old = deployed_template(cf, name) if exists else {}
    say(f"{'update' if exists else 'create'} {name} in {aws.region} (account {cfg.account_id})"
        + (f" via {aws.endpoint}" if aws.endpoint else ""))

    # The local comparison needs no AWS call: refuse before any change set exists.
    early = local_problems(old, new, aws.region)
    if early:
        raise Refused(REFUSING.format(name) + "created or executed.\n"
                      + "\n".join(f"  {title}: {why}" for title, why in sorted(early.items())))
    check_names(aws, name, cfg.environment, new, old)

    description = f"scrybe-kms deploy {cfg.environment}" + ("" if target.key_stack else f" ({target.kind} stack)")
    if target.parameters:
        say("parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(target.parameters.items())))
    change_set = _create(aws, opts, journal, name, new, "UPDATE" if exists else "CREATE", description,
                         parameters=target.parameters)
    try:
        verdict = _review(change_set, old, new, opts, aws.region, say, name)
        if verdict == "execute" and exists:
            set_stack_policy(aws, name, new, say)  # the stack policy guards this very update
    except BaseException:
        _discard_after_error(cf, name, change_set, say, journal)
        raise
    if verdict != "execute":
        changeset.discard(cf, name, change_set)
        journal.change_set = None
        if verdict == "no changes" and not opts.plan_only:
            settled = read_stack(cf, name)
            apply_guards(aws, cfg, old, settled, say)
            if target.key_stack:
                write_env(opts, settled, say, journal)
        say("plan only: nothing was executed" if verdict == "plan" else f"no changes: {name} is up to date")
        return verdict

    journal.todo = _todo(cfg, opts, target, exists)
    settled = _execute(aws, opts, journal, name, change_set, say)
    if not exists:
        set_stack_policy(aws, name, new, say)
    journal.done("the stack policy")
    protect_from_termination(aws, cfg, settled)
    journal.done("termination protection")
    say(f"{name}: {settled.status}")
    shown = {key: value for key, value in sorted(settled.outputs.items()) if key != "EnvironmentConfig"}
    if shown:
        say("outputs:\n" + "\n".join(f"  {key} = {value}" for key, value in shown.items()))
    if target.key_stack:
        write_env(opts, settled, say, journal)
    return verdict


def adopt_retained(aws: AwsSession, cfg: EnvironmentConfig, opts: DeployOptions, target: Target, say: Say,
           journal: Journal) -> Verdict:
    """Import what a deleted key stack retained into a new stack, before the ordinary update."""
    cf, name = aws.cloudformation, target.name
    current = read_stack(cf, name)
    if current.state is StackState.ROLLBACK_COMPLETE:
        raise DeployError(f"stack {name} is ROLLBACK_COMPLETE: delete it first (what it retains stays), then run "
                          f"`scrybe-kms deploy {cfg.environment} --adopt` again")
    if current.state.exists:
        raise DeployError(f"--adopt brings back what a deleted stack retained, but {name} exists ({current.status}); "
                          "deploy without --adopt")
    adoption = find_retained(aws, name, target.template)
    say(f"adopt into {name} in {cfg.aws_region} (account {cfg.account_id}): importing what a deleted stack retained; "
        "no key is created\n" + "\n".join(f"  found {line}" for line in adoption.found))
    change_set = _create(aws, opts, journal, name, adoption.template, "IMPORT",
                         f"scrybe-kms deploy {cfg.environment} --adopt", adoption.resources)
    try:
        if change_set.failed:
            raise DeployError(f"{name}: CloudFormation could not create the import change set: {change_set.reason}")
        changes = changes_from(change_set.changes)
        say(format_plan(changes))
        others = [c.logical_id for c in changes if c.action != "Import"]
        if others:
            raise Refused(f"refusing to adopt into {name}: the import change set would also "
                          f"{'/'.join(sorted({c.verb for c in changes if c.action != 'Import'}))} "
                          f"{', '.join(others)}; it was deleted and nothing was executed")
    except BaseException:
        _discard_after_error(cf, name, change_set, say, journal)
        raise
    if opts.plan_only:
        changeset.discard(cf, name, change_set)
        journal.change_set = None
        say("plan only: nothing was imported")
        return "plan"
    journal.todo = ["the import's completion"]
    settled = _execute(aws, opts, journal, name, change_set, say)
    set_stack_policy(aws, name, adoption.template, say)
    say(f"{name}: {settled.status}; now updating it to the full template")
    return "execute"


def _create(aws: AwsSession, opts: DeployOptions, journal: Journal, name: str, body: dict[str, Any],
            change_type: str, description: str, imports: list[dict[str, Any]] | None = None,
            parameters: Mapping[str, str] | None = None) -> changeset.ChangeSet:
    """Create a change set, noting it (by name, before the call) for Ctrl-C to delete."""
    change_set_name = changeset.new_name()
    journal.change_set = changeset.ChangeSet(change_set_name, change_type, "CREATE_PENDING")
    # Compact JSON keeps the body well inside the 51,200-byte inline limit.
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    created = changeset.create(aws.cloudformation, name, text, change_type, description, opts.poll_seconds,
                               change_set_name, imports, parameters)
    journal.change_set = created
    return created


def _execute(aws: AwsSession, opts: DeployOptions, journal: Journal, name: str, change_set: changeset.ChangeSet,
             say: Say) -> Stack:
    """Execute (the change set's name is the operation's token, D41) and follow to the end."""
    try:
        return execute_and_follow(aws.cloudformation, name, change_set.name, say, opts.poll_seconds,
                                  token=change_set.name, on_executed=lambda: setattr(journal, "change_set", None))
    except DeployError:
        if journal.change_set is not None:  # not executed: it would only linger
            _discard_after_error(aws.cloudformation, name, change_set, say, journal)
        raise


def _todo(cfg: EnvironmentConfig, opts: DeployOptions, target: Target, exists: bool) -> list[str]:
    todo = [] if exists else ["the stack policy"]
    if cfg.termination_protection:
        todo.append("termination protection")
    if target.key_stack and opts.env_file is not None:
        todo.append(f"the .env lines in {opts.env_file}")
    return todo


def _review(change_set: changeset.ChangeSet, old: dict[str, Any], new: dict[str, Any], opts: DeployOptions,
            region: str, say: Say, name: str) -> Verdict:
    """What to do with a change set; raises if it failed or would replace a protected resource."""
    if change_set.no_changes:
        return "no changes"
    if change_set.failed:
        raise DeployError(f"{name}: CloudFormation could not create the change set: {change_set.reason}")
    changes = changes_from(change_set.changes)
    say(format_plan(changes))
    problems = refusals(changes, old, new, region)
    if problems:
        raise Refused(REFUSING.format(name) + "executed and the change set was deleted.\n"
                      + "\n".join(f"  {p}" for p in problems))
    return "plan" if opts.plan_only else "execute"


def _discard_after_error(cf: Any, name: str, change_set: changeset.ChangeSet, say: Say, journal: Journal) -> None:
    with no_interrupts():
        try:
            changeset.discard(cf, name, change_set)
            journal.change_set = None
        except DeployError as exc:  # the first error is the one to report
            say(f"WARNING: change set {change_set.name} could not be deleted: {exc}")


def write_env(opts: DeployOptions, stack: Stack, say: Say, journal: Journal) -> None:
    if opts.env_file is not None:
        changed = write_env_outputs(opts.env_file, stack.outputs, stack.name)
        journal.done(f"the .env lines in {opts.env_file}")
        say(f"wrote the AWS_KMS_* lines to {opts.env_file}" if changed
            else f"the AWS_KMS_* lines in {opts.env_file} are up to date")
