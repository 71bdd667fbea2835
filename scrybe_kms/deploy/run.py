"""``scrybe-kms deploy`` and ``scrybe-kms env-config``: a careful wrapper around change sets.

An environment has three stacks in its home region: the key stack (``scrybe-kms-<env>``: keys,
aliases, buckets, trail, log group), the alarm stack (``-alarms``: topics, EventBridge rules) and the
filter stack (``-filters``: metric filters and their alarms), each importing the exports of those
before it; and with disaster recovery one
stack per DR region (``-replica-<region>``), deployed last in its own region with the key stack's
``KmsKeyArn`` as its ``PrimaryKeyArn`` (exports do not cross regions). The key stack's replication
parameters say which DR stacks exist; once a run has deployed a new one, the key stack is updated
again to switch replication to it on (decision D49). Before anything is touched: every template is read and
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

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from scrybe_kms.config import EnvironmentConfig, load_stack, naming
from scrybe_kms.deploy.envfile import check_env_target
from scrybe_kms.deploy.errors import DeployError, LostTrack, Refused
from scrybe_kms.deploy.exports import exported_names, missing_exports
from scrybe_kms.deploy.flow import Target, Verdict, adopt_retained, deploy_stack, write_env
from scrybe_kms.deploy.journal import Journal, interrupted, resume
from scrybe_kms.deploy.options import DeployOptions, Say
from scrybe_kms.deploy.session import AwsSession, SessionFactory, open_session
from scrybe_kms.deploy.stack import read_stack
from scrybe_kms.deploy.templates import check_shape, read_template, rule_problems
from scrybe_kms.template import render, render_alarms, render_filters, render_replica
from scrybe_kms.template.replica_stack import PRIMARY_KEY_PARAMETER
from scrybe_kms.template.replication import ENABLED, parameter_title, replication_parameters

__all__ = ["DeployError", "DeployOptions", "Journal", "Refused", "deploy", "env_config"]

def deploy(opts: DeployOptions, out: TextIO = sys.stdout, session_factory: SessionFactory = open_session) -> int:
    """Deploy the key, alarm and filter stacks, then each DR region's (or just what ``opts.stack`` names)."""
    say, cfg = _printer(out), _config(opts)
    if opts.region in cfg.disaster_recovery_regions:
        raise DeployError(f"deploy runs in the home region {cfg.aws_region} and deploys the {opts.region} stack "
                          f"itself: pass --region {cfg.aws_region} (or none)")
    targets = _targets(opts, cfg)  # every template is read and checked before the first AWS call
    if opts.env_file is not None:
        check_env_target(opts.env_file)
    journal = Journal(not_started=[t.name for t in targets])
    aws: AwsSession | None = None
    regions: Regions | None = None
    try:
        aws = session_factory(opts, cfg)
        _check_rules([t for t in targets if t.region is None], aws)
        regions = Regions(aws, opts, cfg, session_factory)
        _deploy_all(regions, cfg, opts, targets, say, journal)
    except KeyboardInterrupt:
        # The stack being deployed may be a DR region's: its change set and state are read there.
        raise interrupted(regions.current if regions and regions.current else aws, journal, cfg) from None
    except LostTrack as exc:
        raise LostTrack(f"{exc}\n{resume(journal, cfg)}") from None
    return 0


#: Statuses of a DR stack whose resources are all there although its last update did not succeed.
READY_AFTER_ROLLBACK = ("UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE")


@dataclasses.dataclass
class Regions:
    """The home session, and a session per DR region opened on first use (its Rules checked then)."""

    home: AwsSession
    opts: DeployOptions
    cfg: EnvironmentConfig
    factory: SessionFactory
    opened: dict[str, AwsSession] = dataclasses.field(default_factory=dict)
    #: The session of the stack being deployed, when it is a DR region's.
    current: AwsSession | None = None

    def session(self, region: str | None) -> AwsSession:
        if region is None:
            return self.home
        if region not in self.opened:
            self.opened[region] = self.factory(dataclasses.replace(self.opts, region=region), self.cfg)
        return self.opened[region]

    def ready(self) -> set[str]:
        """The DR regions whose stack was created and is settled (an update that rolled back keeps
        what the create made): their bucket and replica key can receive copies. A stack whose create
        failed, or that is failing to delete, is not."""
        found = set()
        for region in self.cfg.disaster_recovery_regions:
            current = read_stack(self.session(region).cloudformation,
                                 naming.replica_stack_name(self.cfg.environment, region))
            if current.state.succeeded or current.status in READY_AFTER_ROLLBACK:
                found.add(region)
        return found


def _deploy_all(regions: Regions, cfg: EnvironmentConfig, opts: DeployOptions, targets: list[Target], say: Say,
                journal: Journal) -> None:
    aws = regions.home
    key = _key_stack(opts, cfg)
    pending: set[str] = set()  # what the key stack will export once the plan just shown is executed
    replication: dict[str, str] | None = None  # the parameters the key stack was deployed with
    for target in targets:
        journal.not_started.remove(target.name)
        journal.stack, journal.todo = target.name, []
        if target.region is not None:
            if _deploy_replica(regions, cfg, opts, target, say, journal, key) == "deferred":
                break
            continue
        if target.key_stack and cfg.multi_region:
            # --stack home touches no DR region (it may be the one that is down): replication stays as deployed.
            ready = _replicating(aws, key, cfg) if opts.stack == "home" else regions.ready()
            replication = replication_parameters(cfg, ready)
            target = dataclasses.replace(target, parameters=replication)
        missing = missing_exports(aws.cloudformation, target.template)
        if missing and set(missing) <= pending:
            say(f"{target.name} will be planned after the stacks before it are deployed: it imports "
                f"{', '.join(missing)}, which they do not export yet")
            break
        if missing:
            raise DeployError(f"{target.name} imports {', '.join(missing)}, which no stack in {cfg.aws_region} "
                              f"exports: deploy the stacks before it first (the key stack {key}, then its alarm "
                              "stack)")
        if opts.adopt and target.key_stack and adopt_retained(aws, cfg, opts, target, say, journal) == "plan":
            say(f"the update of {target.name} to its full template is planned once the import has run")
            break
        verdict = deploy_stack(aws, cfg, opts, target, say, journal)
        pending |= exported_names(target.template) if verdict == "plan" else set()
    else:
        _switch_on_replication(regions, cfg, opts, targets, say, journal, replication)


def _deployed_parameters(aws: AwsSession, stack: str) -> dict[str, str]:
    """The parameter values ``stack`` was last deployed with (empty if it does not exist)."""
    return {str(p.get("ParameterKey")): str(p.get("ParameterValue"))
            for p in read_stack(aws.cloudformation, stack).description.get("Parameters", [])}


def _replicating(aws: AwsSession, key: str, cfg: EnvironmentConfig) -> set[str]:
    """The DR regions the deployed key stack replicates to (its parameters), without calling them."""
    deployed = _deployed_parameters(aws, key)
    return {region for region in cfg.disaster_recovery_regions
            if deployed.get(parameter_title(region)) == ENABLED}


def _deploy_replica(regions: Regions, cfg: EnvironmentConfig, opts: DeployOptions, target: Target, say: Say,
                    journal: Journal, key: str) -> Verdict | str:
    """A DR region's stack, in its region, with the key stack's KmsKeyArn as PrimaryKeyArn."""
    primary = read_stack(regions.home.cloudformation, key).outputs.get("KmsKeyArn")
    if not primary:
        say(f"{target.name} will be planned after {key} is deployed: its {PRIMARY_KEY_PARAMETER} is {key}'s "
            "KmsKeyArn output")
        return "deferred"
    dr = regions.session(target.region)
    _check_rules([target], dr)
    regions.current = dr
    verdict = deploy_stack(dr, cfg, opts, dataclasses.replace(target, parameters={PRIMARY_KEY_PARAMETER: primary}),
                           say, journal)
    regions.current = None
    return verdict


def _switch_on_replication(regions: Regions, cfg: EnvironmentConfig, opts: DeployOptions, targets: list[Target],
                           say: Say, journal: Journal, deployed: dict[str, str] | None) -> None:
    """After this run deployed a DR stack the key stack did not replicate to yet: update the key
    stack again, now replicating to it (S3 refuses a rule whose destination does not exist)."""
    key_target = next((t for t in targets if t.key_stack), None)
    if opts.stack == "replicas" and not opts.plan_only:
        current = _deployed_parameters(regions.home, _key_stack(opts, cfg))
        off = sorted(k for k, v in replication_parameters(cfg, regions.ready()).items() if current.get(k) != v)
        if off:
            say(f"audit-log replication is not on yet ({', '.join(off)}): run `scrybe-kms deploy {cfg.environment} "
                "--stack keys` to switch it on")
        return
    if key_target is None or deployed is None or opts.plan_only or opts.stack != "all":
        return
    now = replication_parameters(cfg, regions.ready())
    if now == deployed:
        return
    added = sorted(k for k in now if now[k] != deployed.get(k))
    say(f"switching audit-log replication on in {key_target.name} ({', '.join(added)}): the DR stacks exist now")
    journal.stack, journal.todo = key_target.name, []
    deploy_stack(regions.home, cfg, opts, dataclasses.replace(key_target, parameters=now), say, journal)


def env_config(opts: DeployOptions, out: TextIO = sys.stdout, session_factory: SessionFactory = open_session) -> int:
    """Print (and with --env-file, merge into a file) the .env lines of an existing key stack, or with
    ``--region`` naming a DR region, of that region's stack (its replica key)."""
    cfg = _config(opts)
    if opts.env_file is not None:
        check_env_target(opts.env_file)
    aws = session_factory(opts, cfg)
    # --region <a DR region>: that region's stack, whose .env lines name the replica there.
    dr = opts.region in cfg.disaster_recovery_regions
    name = naming.replica_stack_name(cfg.environment, aws.region) if dr else _key_stack(opts, cfg)
    current = read_stack(aws.cloudformation, name)
    if not current.state.exists:
        raise DeployError(f"stack {name} does not exist in {aws.region}; deploy it first")
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
    """The stacks to deploy, in order (key, alarm, filter, then each DR region's), each with its
    template; contradictory options refused."""
    # "home": the home region's three stacks only, e.g. while a DR region is unavailable.
    chosen = {kind: opts.stack in ("all", kind) or (opts.stack == "home" and kind != "replicas")
              for kind in ("keys", "filters", "alarms", "replicas")}
    for option, given, stack, kind in (("--template-file", opts.template_file, "key", "keys"),
                                       ("--env-file", opts.env_file, "key", "keys"),
                                       ("--adopt", opts.adopt or None, "key", "keys"),
                                       ("--filters-template-file", opts.filters_template_file, "filter", "filters"),
                                       ("--alarms-template-file", opts.alarms_template_file, "alarm", "alarms")):
        if given is not None and not chosen[kind]:
            raise DeployError(f"{option} is for the {stack} stack, which --stack {opts.stack} does not deploy")
    if opts.stack == "replicas" and not cfg.multi_region:
        raise DeployError(f"--stack replicas: the {cfg.environment} configuration names no disaster_recovery_regions")
    key_name = _key_stack(opts, cfg)
    found: list[Target] = []
    if chosen["keys"]:
        found.append(Target(key_name, _template(opts.template_file, "--template-file", render, cfg), True))
    for kind, suffix, option, path, build in (
            ("alarms", "alarms", "--alarms-template-file", opts.alarms_template_file, render_alarms),
            ("filters", "filters", "--filters-template-file", opts.filters_template_file, render_filters)):
        if chosen[kind]:
            name = f"{opts.stack_name or naming.stack_name(cfg.environment)}-{suffix}"
            found.append(Target(name, _template(path, option, build, cfg), False, kind.removesuffix("s")))
    if chosen["replicas"]:
        for region in cfg.disaster_recovery_regions:
            body = check_shape(json.loads(render_replica(cfg, region)), f"the {cfg.environment} {region} template")
            found.append(Target(naming.replica_stack_name(cfg.environment, region), body, False, "replica", region))
    return found


def _template(path: Path | None, option: str, build: Callable[[EnvironmentConfig], str],
              cfg: EnvironmentConfig) -> dict[str, Any]:
    if path is None:
        return check_shape(json.loads(build(cfg)), f"the {cfg.environment} template")
    return read_template(path, option)
