"""The build commands, and what bad input does to them: one message, non-zero, out/ untouched."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import OUT, ROOT, STACKS


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of stacks/ and out/ to break things in."""
    shutil.copytree(STACKS, tmp_path / "stacks")
    shutil.copytree(OUT, tmp_path / "out")
    return tmp_path


def test_build_all_writes_what_is_committed(tmp_path: Path) -> None:
    result = run("-m", "scrybe_kms", "build", "--out", str(tmp_path / "o"), "--stacks", str(STACKS))
    assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path / "o") == snapshot(OUT)


def test_build_one_env_and_stack_file_entrypoint(tmp_path: Path) -> None:
    result = run("-m", "scrybe_kms", "build", "--env", "dev", "--out", str(tmp_path / "a"), "--stacks", str(STACKS))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "dev.access.md", "dev.alarms.json", "dev.alarms.stack-policy.json", "dev.filters.json",
        "dev.filters.stack-policy.json", "dev.json", "dev.stack-policy.json"]
    result = run(str(STACKS / "dev.py"), "--out", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_second_build_changes_nothing(workspace: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (workspace / "out").iterdir()}
    result = run("-m", "scrybe_kms", "build", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout and "written" not in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (workspace / "out").iterdir()} == before


@pytest.mark.parametrize(("old", "new", "message"), [
    ('"deletion_window_days": 30,', '"deletion_window_days": 45,',
     "'deletion_window_days' must be an integer number of days between 7 and 30 (got 45)"),
    ('"aws_region": "us-west-2",', '"aws_region": "us-west-3",',
     "'aws_region' must be an AWS region where KMS and CloudTrail run, such as 'us-west-2' (got 'us-west-3')"),
    ('role/scrybe-production-app"', 'user/scrybe-production-app"',
     "this is an IAM user ARN, not a role ARN (got 'arn:aws:iam::123456789012:user/scrybe-production-app')"),
    ('"environment": "production",', '"environment": "prod",',
     "'environment' must be one of dev, staging, production (got 'prod')"),
    ('"arn:aws:iam::123456789012:role/security-team",', '"arn:aws:iam::123456789012:role/scrybe-admin",',
     "'admin_role_arns[1]' duplicates an earlier entry (got 'arn:aws:iam::123456789012:role/scrybe-admin')"),
])
def test_bad_config_writes_nothing(workspace: Path, old: str, new: str, message: str) -> None:
    stack = workspace / "stacks" / "production.py"
    text = stack.read_text()
    assert old in text
    stack.write_text(text.replace(old, new, 1))
    before = snapshot(workspace / "out")
    for args in (["-m", "scrybe_kms", "build"], [str(stack)]):
        result = run(*args, cwd=workspace)
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert "nothing was written" in result.stderr
        assert result.stdout == ""
        assert snapshot(workspace / "out") == before


def test_one_bad_environment_blocks_all(workspace: Path) -> None:
    """Templates are written as a set: a bad staging config stops dev and production too."""
    (workspace / "out" / "dev.json").unlink()
    stack = workspace / "stacks" / "staging.py"
    stack.write_text(stack.read_text().replace('"deletion_window_days": 30', '"deletion_window_days": True'))
    result = run("-m", "scrybe_kms", "build", cwd=workspace)
    assert result.returncode == 2
    assert "(got True)" in result.stderr
    assert not (workspace / "out" / "dev.json").exists()


def test_stack_file_environment_must_match_its_name(workspace: Path) -> None:
    stack = workspace / "stacks" / "dev.py"
    stack.write_text(stack.read_text().replace('"environment": "dev"', '"environment": "production"'))
    result = run("-m", "scrybe_kms", "build", "--env", "dev", cwd=workspace)
    assert result.returncode == 2
    assert "'environment' must match the stack file name 'dev' (got 'production')" in result.stderr


def test_unwritable_output_is_one_line_not_a_traceback(workspace: Path) -> None:
    blocker = workspace / "blocked"
    blocker.write_text("a file where a directory should be")
    result = run("-m", "scrybe_kms", "build", "--out", str(blocker), cwd=workspace)
    assert result.returncode == 2
    assert "could not create" in result.stderr and "Traceback" not in result.stderr


def test_failed_write_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scrybe_kms.cli import files

    (tmp_path / "a.json").write_text("old")
    calls = {"n": 0}
    real_fdopen = os.fdopen

    def failing_fdopen(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_fdopen(*args, **kwargs)

    monkeypatch.setattr(files.os, "fdopen", failing_fdopen)
    with pytest.raises(OSError):
        files.write_all(tmp_path, {"a.json": "new", "b.json": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "old"


def test_ctrl_c_during_the_renames_cannot_mix_old_and_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT arriving mid-rename is held until every file is in place, then delivered."""
    import signal

    from scrybe_kms.cli import files

    for name in ("a.json", "b.json", "c.json"):
        (tmp_path / name).write_text("old")
    real_replace = os.replace
    calls = {"n": 0}

    def interrupted_replace(src, dst):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        files.write_all(tmp_path, {"a.json": "new", "b.json": "new", "c.json": "new"})
    assert [(tmp_path / n).read_text() for n in ("a.json", "b.json", "c.json")] == ["new", "new", "new"]


def test_a_failed_rename_restores_the_whole_set_and_names_the_file(workspace: Path) -> None:
    """out/dev.json is a directory: nothing in out/ changes, no temporary file stays, the
    message names that file."""
    out = workspace / "out"
    for name in ("dev.access.md", "dev.stack-policy.json"):
        (out / name).write_text("previous")
    (out / "dev.json").unlink()
    (out / "dev.json").mkdir()
    before = {p.name: (p.read_text() if p.is_file() else "<dir>") for p in out.iterdir()}
    result = run("-m", "scrybe_kms", "build", "--env", "dev", cwd=workspace)
    assert result.returncode == 2, result.stderr
    assert "out/dev.json" in result.stderr and "Traceback" not in result.stderr
    assert {p.name: (p.read_text() if p.is_file() else "<dir>") for p in out.iterdir()} == before


def test_rollback_when_a_rename_fails_midway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename that fails after others succeeded puts the replaced files back."""
    from scrybe_kms.cli import files

    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text("old")
    real_replace = os.replace
    calls = {"n": 0}

    def failing_second(src, dst):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", failing_second)
    with pytest.raises(files.WriteError, match=r"b\.json"):
        files.write_all(tmp_path, {"a.json": "new", "b.json": "new", "c.json": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
    assert [(tmp_path / n).read_text() for n in ("a.json", "b.json")] == ["old", "old"]


def test_version() -> None:
    import scrybe_kms

    result = run("-m", "scrybe_kms", "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"scrybe-kms {scrybe_kms.__version__}"


def test_deploy_without_the_deploy_extra_is_one_line(tmp_path: Path) -> None:
    """boto3 hidden as if the extra were not installed: one line naming the extra, exit 2."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('boto3', 'botocore'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = subprocess.run([sys.executable, "-m", "scrybe_kms", "deploy", "dev", "--stacks", str(STACKS)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "pip install 'scrybe-kms[deploy]'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_stack_file_that_raises_is_one_line(workspace: Path) -> None:
    (workspace / "stacks" / "dev.py").write_text("SETTINGS = {'environment': undefined_name}\n")
    result = run("-m", "scrybe_kms", "build", "--env", "dev", cwd=workspace)
    assert result.returncode == 2
    assert "NameError: name 'undefined_name' is not defined at line 1" in result.stderr
    assert "Traceback" not in result.stderr
