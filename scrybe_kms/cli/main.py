"""``scrybe-kms``: build templates (and, with boto3, deploy them).

Building never imports boto3 or any linter: it needs only the configuration and troposphere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scrybe_kms import __version__
from scrybe_kms.cli.artifacts import artifacts
from scrybe_kms.cli.files import WriteError, write_all
from scrybe_kms.config import ConfigError, EnvironmentConfig, load_stack, stack_config
from scrybe_kms.config.validators import ENVIRONMENTS
from scrybe_kms.template import TemplateTooLarge

__all__ = ["main", "run_stack"]

PROG = "scrybe-kms"
#: ``scrybe_kms.deploy.options.STACK_CHOICES``, written out: importing the deploy package pulls in boto3.
STACK_CHOICES = ("all", "home", "keys", "alarms", "filters", "replicas")
#: ``scrybe_kms.deploy.options.DEFAULT_TIMEOUT``, written out for the same reason.
DEFAULT_TIMEOUT = 10.0
#: The exit status of a command stopped by Ctrl-C, as a shell reports it (128 + SIGINT).
INTERRUPTED = 130


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _write(out_dir: Path, configs: Sequence[EnvironmentConfig]) -> int:
    files: dict[str, str] = {}
    try:
        for cfg in configs:
            files.update(artifacts(cfg))
    except TemplateTooLarge as exc:
        return _error(f"{exc}\nnothing was written.")
    try:
        changed = write_all(out_dir, files)
    except WriteError as exc:
        return _error(f"{exc}\nnothing was written.")
    for name in sorted(files):
        state = "written" if name in changed else "unchanged"
        print(f"{out_dir / name}: {state}")
    return 0


def build(envs: Sequence[str], out_dir: Path, stacks_dir: Path) -> int:
    """Validate every requested environment first; write only if all of them are valid."""
    configs, problems = [], []
    for env in envs:
        try:
            configs.append(load_stack(stacks_dir / f"{env}.py"))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        return _error("\n".join(problems) + "\nnothing was written.")
    return _write(out_dir, configs)


def run_stack(settings: Mapping[str, Any], source: str, argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python stacks/<env>.py [--out DIR]``; ``source`` is the file's path."""
    parser = argparse.ArgumentParser(description="Build this environment's template.")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    args = parser.parse_args(argv)
    try:
        cfg = stack_config(settings, Path(source))
    except ConfigError as exc:
        return _error(f"{exc}\nnothing was written.")
    return _write(args.out, [cfg])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Scrybe PHI KMS templates.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write out/<env>.json, .access.md and .stack-policy.json per environment")
    b.add_argument("--env", action="append", choices=ENVIRONMENTS,
                   help="environment to build (repeatable; default: all)")
    b.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    b.add_argument("--stacks", type=Path, default=Path("stacks"),
                   help="directory holding <env>.py stack files (default: stacks)")

    def aws_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("env", choices=ENVIRONMENTS, help="environment")
        p.add_argument("--stacks", type=Path, default=Path("stacks"), help="stack files directory (default: stacks)")
        p.add_argument("--stack-name", help="the key stack's name (default: scrybe-kms-<env>); deploy names the "
                                            "filter and alarm stacks <name>-filters and <name>-alarms")
        p.add_argument("--env-file", type=Path, help="merge the AWS_KMS_* lines into this .env file")
        p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE / the default chain)")
        p.add_argument("--region", help="AWS region (default: AWS_REGION / the profile's); must match the config "
                                        "(env-config: or one of its disaster_recovery_regions)")
        p.add_argument("--endpoint-url", help="AWS endpoint, e.g. a local emulator (default: AWS_ENDPOINT_URL)")
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"seconds to wait for a connection and for each answer (default: {DEFAULT_TIMEOUT:g})")

    d = sub.add_parser("deploy", help="deploy the key, alarm and filter stacks, then each DR region's: for each, "
                                      "create a change set, show the plan, refuse unsafe changes, execute")
    aws_options(d)
    d.add_argument("--stack", choices=STACK_CHOICES, default="all",
                   help="deploy every stack in order (all, the default), the home region's three (home), "
                        "or only one kind")
    d.add_argument("--template-file", type=Path,
                   help="the key stack's template, e.g. out/<env>.json (default: build it)")
    d.add_argument("--filters-template-file", type=Path,
                   help="the filter stack's template, e.g. out/<env>.filters.json (default: build it)")
    d.add_argument("--alarms-template-file", type=Path,
                   help="the alarm stack's template, e.g. out/<env>.alarms.json (default: build it)")
    d.add_argument("--plan", action="store_true", help="print the plans and stop; execute nothing")
    d.add_argument("--adopt", action="store_true",
                   help="the key stack was deleted: import the keys, aliases, buckets and log group it retained "
                        "into a new stack, then update it to the full template (creates no new key)")
    e = sub.add_parser("env-config", help="print (or --env-file: merge) an existing key stack's .env lines "
                                          "(--region <DR region>: that region's replica)")
    aws_options(e)
    return parser


def _aws_command(args: argparse.Namespace) -> int:
    # boto3 and cfn-lint are imported only here: building templates never needs them.
    try:
        from scrybe_kms.deploy import DeployError, DeployOptions, deploy, env_config
    except ModuleNotFoundError as exc:
        return _error(f"'{args.command}' needs the deploy extra, which is not installed (missing module "
                      f"{exc.name!r}): pip install 'scrybe-kms[deploy]'")

    opts = DeployOptions(
        environment=args.env, stacks_dir=args.stacks, stack_name=args.stack_name, env_file=args.env_file,
        profile=args.profile, region=args.region, endpoint_url=args.endpoint_url,
        template_file=getattr(args, "template_file", None), plan_only=getattr(args, "plan", False),
        stack=getattr(args, "stack", "all"), alarms_template_file=getattr(args, "alarms_template_file", None),
        filters_template_file=getattr(args, "filters_template_file", None),
        adopt=getattr(args, "adopt", False), timeout=args.timeout)
    try:
        return (deploy if args.command == "deploy" else env_config)(opts, sys.stdout)
    except ConfigError as exc:
        return _error(str(exc))
    except DeployError as exc:
        print(f"{PROG}: {'error: ' if exc.exit_code != INTERRUPTED else ''}{exc}", file=sys.stderr)
        return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "build":
        return build(args.env or list(ENVIRONMENTS), args.out, args.stacks)
    try:
        return _aws_command(args)
    except KeyboardInterrupt:  # before the deploy reached AWS (while importing or building)
        print(f"{PROG}: interrupted before any stack was touched; nothing was changed", file=sys.stderr)
        return INTERRUPTED
