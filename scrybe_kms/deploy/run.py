"""``scrybe-kms deploy`` and ``scrybe-kms env-config``: a careful wrapper around change sets.

An environment has two stacks: the key stack (``scrybe-kms-<env>``: keys, aliases, buckets, trail,
log group) and the alarm stack (``scrybe-kms-<env>-alarms``), which imports the key stack's
exports and so is deployed after it. Before anything is touched: every template is read and
checked (its shape, its region and account ``Rules``), and so is the ``--env-file`` target. Then
for each stack, in that order: follow it to the end if another run left it in progress, refuse
locally anything that would replace or remove a protected resource, check that no name it would
create exists outside it, create a change set, print the plan, refuse again on what the change set
says, set the stack policy, execute, stream this execution's events, then apply the guards and
print the outputs. A failure or refusal stops everything. Nothing here deletes a stack or a
resource. ``--adopt`` first imports what a deleted key stack retained (``adopt``).

Ctrl-C ends the run with one line (``Interrupted``): the stack's state, the unexecuted change set
it deleted, and what it did not get to; a rerun finishes that.

The parts: ``flow`` (one stack's deploy), ``session`` (which account and region), ``templates``,
``preflight``, ``stack`` (what its status means), ``changeset``, ``refusals``, ``exports``, ``events``,
``guards``, ``adopt``, ``journal`` and ``envfile``. Only this package imports boto3, and the CLI
imports it only for these commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from scrybe_kms.config import EnvironmentConfig, load_stack, naming
from scrybe_kms.deploy.envfile import check_env_target
from scrybe_kms.deploy.errors import DeployError, LostTrack, Refused
from scrybe_kms.deploy.exports import exported_names, missing_exports
from scrybe_kms.deploy.flow import Target, adopt_retained, deploy_stack, write_env
from scrybe_kms.deploy.journal import Journal, interrupted, resume
from scrybe_kms.deploy.options import DeployOptions, Say
from scrybe_kms.deploy.session import AwsSession, SessionFactory, open_session
from scrybe_kms.deploy.stack import read_stack
from scrybe_kms.deploy.templates import check_shape, read_template, rule_problems
from scrybe_kms.template import render, render_alarms

__all__ = ["DeployError", "DeployOptions", "Journal", "Refused", "deploy", "env_config"]

def deploy(opts: DeployOptions, out: TextIO = sys.stdout, session_factory: SessionFactory = open_session) -> int:
    """Deploy the key stack, then the alarm stack (or just the one ``opts.stack`` names)."""
    say, cfg = _printer(out), _config(opts)
    targets = _targets(opts, cfg)  # every template is read and checked before the first AWS call
    if opts.env_file is not None:
        check_env_target(opts.env_file)
    journal = Journal(not_started=[t.name for t in targets])
    aws: AwsSession | None = None
    try:
        aws = session_factory(opts, cfg)
        _check_rules(targets, aws)
        _deploy_all(aws, cfg, opts, targets, say, journal)
    except KeyboardInterrupt:
        raise interrupted(aws, journal, cfg) from None
    except LostTrack as exc:
        raise LostTrack(f"{exc}\n{resume(journal, cfg)}") from None
    return 0


def _deploy_all(aws: AwsSession, cfg: EnvironmentConfig, opts: DeployOptions, targets: list[Target], say: Say,
                journal: Journal) -> None:
    key = _key_stack(opts, cfg)
    pending: set[str] = set()  # what the key stack will export once the plan just shown is executed
    for target in targets:
        journal.not_started.remove(target.name)
        journal.stack, journal.todo = target.name, []
        missing = missing_exports(aws.cloudformation, target.template)
        if missing and set(missing) <= pending:
            say(f"{target.name} will be planned after {key} is deployed: it imports {', '.join(missing)}, "
                f"which {key} does not export yet")
            break
        if missing:
            raise DeployError(f"{target.name} imports {', '.join(missing)}, which no stack in {cfg.aws_region} "
                              f"exports: deploy the key stack {key} first")
        if opts.adopt and target.key_stack and adopt_retained(aws, cfg, opts, target, say, journal) == "plan":
            say(f"the update of {target.name} to its full template is planned once the import has run")
            break
        verdict = deploy_stack(aws, cfg, opts, target, say, journal)
        pending = exported_names(target.template) if verdict == "plan" else set()


def env_config(opts: DeployOptions, out: TextIO = sys.stdout, session_factory: SessionFactory = open_session) -> int:
    """Print (and with --env-file, merge into a file) the .env lines of an existing key stack."""
    cfg = _config(opts)
    if opts.env_file is not None:
        check_env_target(opts.env_file)
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
        write_env(opts, current, _printer(out), Journal())
    return 0


def _printer(out: TextIO) -> Say:
    return lambda text: print(text, file=out, flush=True)


def _config(opts: DeployOptions) -> EnvironmentConfig:
    return load_stack(opts.stacks_dir / f"{opts.environment}.py")


def _key_stack(opts: DeployOptions, cfg: EnvironmentConfig) -> str:
    return opts.stack_name or naming.stack_name(cfg.environment)


def _check_rules(targets: list[Target], aws: AwsSession) -> None:
    """A template built for another region or account is refused before any change set (D44)."""
    for target in targets:
        problems = rule_problems(target.template, aws.region, aws.account)
        if problems:
            raise Refused(f"refusing to deploy {target.name}: its template's Rules do not hold in {aws.region}, "
                          f"account {aws.account}; nothing was created or executed.\n"
                          + "\n".join(f"  {p}" for p in problems))


def _targets(opts: DeployOptions, cfg: EnvironmentConfig) -> list[Target]:
    """The stacks to deploy, key stack first, each with its template; contradictory options refused."""
    keys, alarms = opts.stack in ("all", "keys"), opts.stack in ("all", "alarms")
    for option, given, stack, deployed in (("--template-file", opts.template_file, "key", keys),
                                           ("--env-file", opts.env_file, "key", keys),
                                           ("--adopt", opts.adopt or None, "key", keys),
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
        return check_shape(json.loads(build(cfg)), f"the {cfg.environment} template")
    return read_template(path, option)
