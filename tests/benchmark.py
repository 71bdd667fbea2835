"""Speed and memory figures for scrybe-kms, printed, never asserted: ``tox -e bench``.

Not a test module (pytest collects only ``test_*.py``). Every figure is the median of several
runs, each in a fresh process, measured from outside that process: wall time from spawn to exit
and its peak resident memory (``ru_maxrss`` from ``wait4``), in MB of 10^6 bytes.

Targets on 2 cores (issues 5 and 9): ``import scrybe_kms`` in under 80 ms median, loading neither
botocore nor troposphere's resource modules; every environment's files (every stack, their stack
policies and the access matrix) built by ``scrybe-kms build`` in a cold process in under 0.25 s
median and under 60 MB peak; that build imports neither boto3, botocore nor cfn-lint; a deploy
returns within 3 s of the stack reaching its final state. ``--check`` exits 1 when one is
missed. The deploy figures need the local emulator (``tools/localstack.py``, 127.0.0.1 only);
they compare ``scrybe-kms deploy`` with ``aws cloudformation deploy`` on the same template, for
the three home stacks of an environment (each run in a fresh emulator account) and for an update (the alarm topic's
display name).

    python tests/benchmark.py [--runs 5] [--deploy-runs 3] [--no-deploy] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

import localstack  # noqa: E402

from scrybe_kms.config import load_stack  # noqa: E402
from scrybe_kms.config.validators import ENVIRONMENTS  # noqa: E402
from scrybe_kms.template import render, render_alarms, render_filters  # noqa: E402

IMPORT_SECONDS, BUILD_SECONDS, BUILD_MB, DEPLOY_LAG_SECONDS = 0.08, 0.25, 60.0, 3.0
FORBIDDEN_IN_BUILD = ("boto3", "botocore", "cfnlint")
FORBIDDEN_IN_IMPORT = ("botocore", "troposphere", "awacs", "principalmapper")
DEPLOY_ENV = "production"  # the largest templates
STACK = f"scrybe-kms-{DEPLOY_ENV}"
#: Deployed second.
ALARM_STACK = f"{STACK}-alarms"
FILTER_STACK = f"{STACK}-filters"
TOOLS = ("scrybe-kms deploy", "aws cloudformation deploy")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    #: deploys only: seconds from the stack's settled event to the command's exit
    lag: float | None = None
    #: deploys only: the emulator account the stack lives in
    account: str | None = None


# Linux charges a child with the memory of the process it was spawned from (``ru_maxrss`` keeps
# the pre-exec image's high-water mark), so a command spawned straight from this ~30 MB process
# would never report less than 30 MB. A bare interpreter (about 10 MB, less than any Python
# command measured here) spawns and times each command instead and reports its figures.
LAUNCHER = """import os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as report:
    report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {seconds}")
"""


#: Measured as a user runs it: bytecode caching on (a shell that sets PYTHONDONTWRITEBYTECODE would
#: make every run compile the package from source, and measure that instead).
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def spawn(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[Run, str, str]:
    """Run one fresh process; return its wall time, peak RSS, stdout and stderr."""
    env = USER_ENV if env is None else {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, report.name, *argv], cwd=ROOT, env=env,
                       stdout=out, stderr=err, stdin=subprocess.DEVNULL, check=True)
        code, peak_kib, seconds = report.read().split()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if int(code) != 0:
        raise SystemExit(f"benchmark: {' '.join(argv)} exited {code}:\n{stderr[-2000:]}{stdout[-2000:]}")
    return Run(float(seconds), int(peak_kib) * 1024 / 1e6), stdout, stderr


def tool(name: str) -> str:
    """A console script from this interpreter's environment (tox's), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"benchmark: {name} is not installed; run through `tox -e bench`")
    return found


def median(runs: Sequence[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def spread(runs: Sequence[Run], attr: str) -> str:
    values = [getattr(r, attr) for r in runs]
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


# -- build, import and lint --------------------------------------------------------------------

def build_runs(count: int) -> list[Run]:
    runs = []
    for _ in range(count):
        with tempfile.TemporaryDirectory() as out:  # a fresh directory: every file really written
            runs.append(spawn([sys.executable, "-m", "scrybe_kms", "build", "--out", out])[0])
    return runs


def build_imports() -> tuple[set[str], list[tuple[float, str]]]:
    """Top-level packages ``scrybe-kms build`` imports, and the slowest imports (ms, name)."""
    with tempfile.TemporaryDirectory() as out:
        _, _, stderr = spawn([sys.executable, "-X", "importtime", "-m", "scrybe_kms", "build", "--out", out])
    packages, slowest = set(), []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit():
            continue  # the header line
        packages.add(name.strip().split(".")[0])
        if not name[1:].startswith(" "):  # imported from the top, not as part of another import
            slowest.append((int(cumulative) / 1000, name.strip()))
    return packages, sorted(slowest, reverse=True)[:6]


PHASES = """
import json, sys, time
marks = [("start", time.perf_counter())]
from pathlib import Path
import scrybe_kms.cli
marks.append(("import scrybe_kms.cli (troposphere, awacs)", time.perf_counter()))
from scrybe_kms.config import load_stack
envs = sys.argv[1:]
configs = [load_stack(Path("stacks") / f"{e}.py") for e in envs]
marks.append((f"load and validate {len(envs)} stack files", time.perf_counter()))
from scrybe_kms.template import render, render_alarms, render_filters, render_replica
texts = [render(c) for c in configs]
marks.append((f"render {len(envs)} key templates", time.perf_counter()))
alarms = [render_alarms(c) for c in configs]
marks.append((f"render {len(envs)} alarm templates", time.perf_counter()))
filters = [render_filters(c) for c in configs]
marks.append((f"render {len(envs)} filter templates", time.perf_counter()))
replicas = [(c, r, render_replica(c, r)) for c in configs for r in c.disaster_recovery_regions]
marks.append((f"render {len(replicas)} DR templates", time.perf_counter()))
from scrybe_kms.derived.access import access_markdown
from scrybe_kms.derived.replica_access import replica_access_markdown
[access_markdown(t, c, alarm_template=f) for t, c, f in zip(texts, configs, filters)]
[replica_access_markdown(x, c, r, json.loads(texts[configs.index(c)])) for c, r, x in replicas]
marks.append((f"evaluate {len(envs) + len(replicas)} access matrices", time.perf_counter()))
from scrybe_kms.derived.stack_policy import render_stack_policy
every = texts + alarms + filters + [x for _, _, x in replicas]
[render_stack_policy(json.loads(t)) for t in every]
marks.append((f"{len(every)} stack policies", time.perf_counter()))
print(json.dumps(marks))
"""


def build_phases() -> list[tuple[str, float]]:
    """Where one cold build spends its time (ms per phase, measured inside the process)."""
    _, stdout, _ = spawn([sys.executable, "-c", PHASES, *ENVIRONMENTS])
    marks = json.loads(stdout)
    return [(name, (at - marks[i - 1][1]) * 1000) for i, (name, at) in enumerate(marks) if i]


def lint_runs(count: int) -> list[Run]:
    """cfn-lint on every committed template, with the rules the test suite uses."""
    configs = [load_stack(ROOT / "stacks" / f"{env}.py") for env in ENVIRONMENTS]
    argv = [tool("cfn-lint"), "--include-checks", "I", "--include-experimental",
            "--regions", *sorted({c.aws_region for c in configs}), "--",
            *(str(ROOT / "out" / f"{env}{kind}.json") for env in ENVIRONMENTS
              for kind in ("", ".alarms", ".filters"))]
    # The DR templates lint in their own region.
    argv[argv.index("--regions") + 1:argv.index("--regions") + 1] = sorted(
        {r for c in configs for r in c.disaster_recovery_regions} - {c.aws_region for c in configs})
    argv += [str(ROOT / "out" / f"{c.environment}.replica-{r}.json")
             for c in configs for r in c.disaster_recovery_regions]
    return [spawn(argv)[0] for _ in range(count)]


# -- deploys against the emulator -------------------------------------------------------------

class Emulator:
    """One emulator, with a fresh account (LocalStack keys state by account) for each new stack."""

    def __init__(self, endpoint: str, home: Path) -> None:
        self.endpoint, self.home = endpoint, home
        # Without disaster recovery: LocalStack has no AWS::KMS::ReplicaKey (see tests/e2e), so the
        # deploys time the three home stacks.
        settings = runpy.run_path(str(ROOT / "stacks" / f"{DEPLOY_ENV}.py"))["SETTINGS"]
        self.settings = {k: v for k, v in settings.items() if k != "disaster_recovery_regions"}
        self.original_account = load_stack(ROOT / "stacks" / f"{DEPLOY_ENV}.py").account_id
        self.region = str(self.settings["aws_region"])
        self.accounts = 0

    def new_account(self) -> tuple[str, dict[str, str], Path, Path]:
        """An account ID, its client environment, a stacks directory and its rendered key template
        (the alarm template is written beside it as ``alarms.json``)."""
        self.accounts += 1
        account = f"{210000000000 + self.accounts:012d}"
        where = self.home / account
        where.mkdir()
        settings = json.loads(json.dumps(self.settings).replace(self.original_account, account))
        (where / "stacks").mkdir()
        stack_file = where / "stacks" / f"{DEPLOY_ENV}.py"
        stack_file.write_text(f"SETTINGS = {settings!r}\n")
        template = where / "template.json"
        template.write_text(render(load_stack(stack_file)))
        (where / "alarms.json").write_text(render_alarms(load_stack(stack_file)))
        (where / "filters.json").write_text(render_filters(load_stack(stack_file)))
        env = localstack.client_environment(self.endpoint, account, self.region, where)
        return account, env, where / "stacks", template

    def settled_at(self, account: str) -> float:
        """When the newest settled (not in-progress) event of the three stacks happened, by its
        timestamp: the last one ends the deploy (an update may change the alarm stack only)."""
        import boto3

        cf = boto3.Session(aws_access_key_id=account, aws_secret_access_key="test",
                           region_name=self.region).client("cloudformation", endpoint_url=self.endpoint)
        settled = [float(event["Timestamp"].timestamp()) for stack in (STACK, ALARM_STACK, FILTER_STACK)
                   for event in cf.describe_stack_events(StackName=stack)["StackEvents"]
                   if event["LogicalResourceId"] == stack and not event["ResourceStatus"].endswith("_IN_PROGRESS")]
        if not settled:
            raise SystemExit(f"benchmark: no stack in account {account} has a settled event")
        return max(settled)


def timed_deploy(emulator: Emulator, account: str, argv: Sequence[str], env: dict[str, str]) -> Run:
    run, _, _ = spawn(argv, env)
    ended = time.time()
    return Run(run.seconds, run.peak_mb, ended - emulator.settled_at(account), account)


def commands(stacks: Path, template: Path) -> dict[str, list[str]]:
    """The two tools of ``TOOLS``, deploying the same three templates to the same three stacks, in
    order: ``scrybe-kms deploy`` in one command, the AWS CLI as the README's three commands."""
    alarms, filters = template.with_name("alarms.json"), template.with_name("filters.json")

    def aws(body: Path, stack: str) -> str:
        return (f"{tool('aws')} cloudformation deploy --template-file {body} --stack-name {stack} "
                "--capabilities CAPABILITY_IAM --no-fail-on-empty-changeset")

    return {
        TOOLS[0]: [sys.executable, "-m", "scrybe_kms", "deploy", DEPLOY_ENV, "--stacks", str(stacks),
                   "--template-file", str(template), "--alarms-template-file", str(alarms),
                   "--filters-template-file", str(filters)],
        TOOLS[1]: ["sh", "-c",
                   f"{aws(template, STACK)} && {aws(alarms, ALARM_STACK)} && {aws(filters, FILTER_STACK)}"],
    }


def with_display_name(template: Path, name: str) -> None:
    """A safe update: the alarm topic's display name, in the alarm stack."""
    alarms = template.with_name("alarms.json")
    body = json.loads(alarms.read_text())
    body["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = name
    alarms.write_text(json.dumps(body, separators=(",", ":"), sort_keys=True))


def deploy_runs(count: int, endpoint: str | None) -> dict[str, list[Run]]:
    results: dict[str, list[Run]] = {}
    # An emulator somebody else started (--endpoint) is used, not stopped.
    emulator_running = localstack.LocalStack() if endpoint is None else nullcontext(SimpleNamespace(endpoint=endpoint))
    with tempfile.TemporaryDirectory() as home, emulator_running as running:
        emulator = Emulator(running.endpoint, Path(home))
        # Warm the emulator's services (its first call to each is slow) with one untimed deploy.
        _, env, stacks, template = emulator.new_account()
        spawn(commands(stacks, template)[TOOLS[0]], env)
        # Each tool updates the stack it created in its first run.
        own: dict[str, tuple[str, dict[str, str], Path, Path]] = {}
        for _ in range(count):
            for name in TOOLS:
                account, env, stacks, template = emulator.new_account()
                own.setdefault(name, (account, env, stacks, template))
                results.setdefault(f"new stack: {name}", []).append(
                    timed_deploy(emulator, account, commands(stacks, template)[name], env))
        for number in range(count):
            for name, (account, env, stacks, template) in own.items():
                with_display_name(template, f"Scrybe PHI key alarms (benchmark {number})")
                results.setdefault(f"update:    {name}", []).append(
                    timed_deploy(emulator, account, commands(stacks, template)[name], env))
    return results


# -- report -----------------------------------------------------------------------------------

def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per build/import/lint figure")
    parser.add_argument("--deploy-runs", type=int, default=3, help="deploys per tool and scenario")
    parser.add_argument("--no-deploy", action="store_true", help="skip the emulator deploys")
    parser.add_argument("--endpoint", help="use this running emulator instead of starting one")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures appear as measured
    say = print
    say(f"scrybe-kms benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}; "
        f"median (min-max) of {args.runs} fresh processes, {args.deploy_runs} per deploy figure")
    say(f"{'':<44}{'wall s':>24}{'peak MB':>24}")
    missed: list[str] = []

    def row(label: str, runs: Sequence[Run], target: str = "") -> None:
        say(f"{label:<44}{spread(runs, 'seconds'):>24}{spread(runs, 'peak_mb'):>24}  {target}".rstrip())

    row("python -c pass (the interpreter alone)", [spawn([sys.executable, "-c", "pass"])[0] for _ in range(args.runs)])
    build_runs(1)  # one untimed build writes the bytecode caches a user's first run leaves behind
    imports = [spawn([sys.executable, "-c", "import scrybe_kms"])[0] for _ in range(args.runs)]
    met = median(imports, "seconds") < IMPORT_SECONDS
    missed += [] if met else ["import"]
    row("import scrybe_kms", imports, f"target < {IMPORT_SECONDS} s: {verdict(met)}")
    builds = build_runs(args.runs)
    met = median(builds, "seconds") < BUILD_SECONDS and median(builds, "peak_mb") < BUILD_MB
    missed += [] if met else ["build"]
    written = len(list((ROOT / "out").iterdir()))
    row(f"scrybe-kms build ({len(ENVIRONMENTS)} environments, {written} files)", builds,
        f"target < {BUILD_SECONDS} s, < {BUILD_MB:.0f} MB: {verdict(met)}")
    templates = [p for p in (ROOT / "out").glob("*.json") if not p.name.endswith("stack-policy.json")]
    row(f"cfn-lint, all {len(templates)} templates", lint_runs(args.runs))
    _, loaded, _ = spawn([sys.executable, "-c", "import json, sys, scrybe_kms; print(json.dumps(sorted(sys.modules)))"])
    leaked_import = sorted({m.split(".")[0] for m in json.loads(loaded)} & set(FORBIDDEN_IN_IMPORT))
    missed += [f"import loads {m}" for m in leaked_import]
    say(f"import scrybe_kms loads {', '.join(leaked_import) or 'none'} of {', '.join(FORBIDDEN_IN_IMPORT)} "
        f"(target: none; {verdict(not leaked_import)})")

    packages, slowest = build_imports()
    leaked = sorted(set(FORBIDDEN_IN_BUILD) & packages)
    missed += leaked
    say(f"\nscrybe-kms build imports boto3: {'yes' if 'boto3' in packages else 'no'}, botocore: "
        f"{'yes' if 'botocore' in packages else 'no'}, cfn-lint: {'yes' if 'cfnlint' in packages else 'no'} "
        f"(target: none; {verdict(not leaked)})")
    say("slowest top-level imports in that build: " + ", ".join(f"{name} {ms:.0f} ms" for ms, name in slowest))
    say("where one cold build's time goes:")
    for name, ms in build_phases():
        say(f"  {name:<44}{ms:>8.0f} ms")

    if not args.no_deploy:
        say(f"\ndeploys of the {DEPLOY_ENV} template to LocalStack: wall s from start; 'after' = s from the stack's "
            f"final event to the command's exit (target for scrybe-kms deploy: < {DEPLOY_LAG_SECONDS:.0f} s)")
        say(f"{'':<44}{'wall s':>24}{'after final s':>24}{'peak MB':>24}")
        for label, runs in deploy_runs(args.deploy_runs, args.endpoint).items():
            target = ""
            if "scrybe-kms" in label:
                met = median(runs, "lag") < DEPLOY_LAG_SECONDS
                missed += [] if met else [label]
                target = f"  {verdict(met)}"
            say(f"{label:<44}{spread(runs, 'seconds'):>24}{spread(runs, 'lag'):>24}{spread(runs, 'peak_mb'):>24}"
                f"{target}")

    say("\nall targets met" if not missed else f"\ntargets missed: {', '.join(missed)}")
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
