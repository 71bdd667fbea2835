#!/usr/bin/env python3
"""Install, start and stop a local LocalStack (AWS emulator) on 127.0.0.1, without Docker.

    python3 tools/localstack.py install          # once: .emulator/venv with Python 3.13
    python3 tools/localstack.py run [--port N]   # foreground, Ctrl-C stops it
    python3 tools/localstack.py start|stop       # background, for following the README by hand

The test suite uses the same functions (tests/e2e/conftest.py). Only loopback is ever bound.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".emulator"
VENV = HOME / "venv"
REQUIREMENTS = Path(__file__).with_name("localstack-requirements.txt")
SERVICES = "cloudformation,kms,s3,cloudtrail,logs,cloudwatch,sns,sqs,iam,sts,events"


def python313() -> str:
    """A Python 3.13 interpreter that really runs (pyenv shims may exist and fail): LocalStack
    2026.3 does not start on 3.11 or 3.12."""
    pyenv = os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")
    candidates = [*sorted(glob.glob(pyenv)), "/usr/local/bin/python3.13", "/usr/bin/python3.13",
                  shutil.which("python3.13")]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 13))"],
                               capture_output=True, text=True, check=False)
        if probe.stdout.strip() == "True":
            return candidate
    raise SystemExit("LocalStack needs Python 3.13, and none was found (looked in ~/.pyenv/versions, "
                     "/usr/local/bin, /usr/bin and PATH); install it, e.g. `pyenv install 3.13`")


def installed() -> bool:
    python = VENV / "bin" / "python"
    return python.exists() and subprocess.run(
        [str(python), "-c", "import localstack.runtime.main"], capture_output=True, check=False).returncode == 0


def install() -> Path:
    if installed():
        return VENV
    HOME.mkdir(exist_ok=True)
    subprocess.run([python313(), "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "-r", str(REQUIREMENTS)], check=True)
    return VENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(port: int, data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "OVERRIDE_IN_DOCKER": "0",           # this machine has /.dockerenv
        "FILESYSTEM_ROOT": data_dir,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER": "hypercorn",       # the default server ignores the host and binds 0.0.0.0
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SERVICES": SERVICES,
        "CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES": "1",  # strict mode downloads a list; offline it fails
    })
    return env


def client_environment(endpoint: str, account: str, region: str, home: Path) -> dict[str, str]:
    """Environment for an AWS client (boto3, the AWS CLI, ``scrybe-kms deploy``) that can reach
    only the emulator: no inherited AWS_* settings, empty config files in ``home``, no instance
    metadata. LocalStack takes a 12-digit access key ID as the account ID."""
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": account, "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": region, "AWS_REGION": region, "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(home / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
    })
    return env


class LocalStack:
    """A running emulator; ``endpoint`` is its URL. Use as a context manager."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix="localstack-")
        self.log_path = Path(self.data_dir) / "localstack.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> LocalStack:
        install()
        log = open(self.log_path, "wb")  # kept open for the life of the process
        self.process = subprocess.Popen(
            [str(VENV / "bin" / "python"), "-m", "localstack.runtime.main"],
            env=environment(self.port, self.data_dir), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"LocalStack exited early; see {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"LocalStack did not become healthy in {timeout:.0f}s; see {self.log_path}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "run", "start", "stop"])
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()
    if args.command == "install":
        print(f"LocalStack installed in {install()}")
        return 0
    pid_file = HOME / "localstack.pid"
    if args.command == "stop":
        if pid_file.exists():
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink()
            print("LocalStack stopped")
        return 0
    emulator = LocalStack(args.port).start()
    assert emulator.process is not None
    print(f"LocalStack is up at {emulator.endpoint} (log: {emulator.log_path})")
    if args.command == "start":
        pid_file.write_text(str(emulator.process.pid))
        return 0
    try:
        emulator.process.wait()
    except KeyboardInterrupt:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
