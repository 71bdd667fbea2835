"""``--env-file`` is edited in place, as an editor would (issue 13, finding 5; decision D45).

A table of ``.env`` files as applications keep them, and what merging the three ``AWS_KMS_*``
lines must leave; then the file itself: symlinks, hard links, owner, group and mode, read-only
files, missing directories, and a write that fails halfway. The tests run as root here, so owner
and group are checked by handing a file to another uid/gid first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scrybe_kms.deploy import DeployError
from scrybe_kms.deploy.envfile import check_env_target, merge_env, parse_env_lines, write_env_file

VALUES = {"AWS_KMS_KEY_ID": "k-2", "AWS_KMS_KEY_ARN": "arn:aws:kms:us-west-2:1:key/k-2", "AWS_KMS_REGION": "us-west-2"}
APPENDED = "AWS_KMS_KEY_ID=k-2\nAWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k-2\nAWS_KMS_REGION=us-west-2\n"


@pytest.mark.parametrize(("existing", "expected"), [
    pytest.param("", APPENDED, id="empty"),
    pytest.param("DB=x\n", "DB=x\n" + APPENDED, id="other lines kept"),
    pytest.param("DB=x", "DB=x\n" + APPENDED, id="no final newline"),
    pytest.param("AWS_KMS_KEY_ID = old\n", "AWS_KMS_KEY_ID = k-2\nAWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k-2\n"
                 "AWS_KMS_REGION=us-west-2\n", id="spaces around = recognised, kept"),
    pytest.param("export AWS_KMS_REGION=eu-west-1\n", "export AWS_KMS_REGION=us-west-2\nAWS_KMS_KEY_ID=k-2\n"
                 "AWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k-2\n", id="export kept"),
    pytest.param("\ufeffAWS_KMS_KEY_ID=old\n", "\ufeffAWS_KMS_KEY_ID=k-2\nAWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/"
                 "k-2\nAWS_KMS_REGION=us-west-2\n", id="byte-order mark recognised and kept"),
    pytest.param("A=1\r\nAWS_KMS_KEY_ID=old\r\n", "A=1\r\nAWS_KMS_KEY_ID=k-2\r\nAWS_KMS_KEY_ARN=arn:aws:kms:"
                 "us-west-2:1:key/k-2\r\nAWS_KMS_REGION=us-west-2\r\n", id="CRLF kept"),
    pytest.param("NOTE=a\x0cb\nSEP=c\u2028d\n", "NOTE=a\x0cb\nSEP=c\u2028d\n" + APPENDED,
                 id="form feed and U+2028 inside values are not line breaks"),
    pytest.param("DB=x  # primary\nAWS_KMS_REGION=eu-west-1 # was ireland\n",
                 "DB=x  # primary\nAWS_KMS_REGION=us-west-2 # was ireland\nAWS_KMS_KEY_ID=k-2\n"
                 "AWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k-2\n", id="inline comments kept"),
    pytest.param("# AWS_KMS_KEY_ID=commented\n", "# AWS_KMS_KEY_ID=commented\n" + APPENDED,
                 id="a commented line is left alone"),
    pytest.param("AWS_KMS_KEY_ID=a\nAWS_KMS_KEY_ID=b\n", "AWS_KMS_KEY_ID=k-2\nAWS_KMS_KEY_ID=k-2\n"
                 "AWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k-2\nAWS_KMS_REGION=us-west-2\n",
                 id="every copy of a key is set"),
    pytest.param('AWS_KMS_KEY_ID="old" # quoted\n', "AWS_KMS_KEY_ID=k-2 # quoted\nAWS_KMS_KEY_ARN=arn:aws:kms:"
                 "us-west-2:1:key/k-2\nAWS_KMS_REGION=us-west-2\n", id="a comment after a quoted value"),
])
def test_merge_edits_only_its_own_lines(existing: str, expected: str) -> None:
    assert merge_env(existing, VALUES) == expected
    assert merge_env(expected, VALUES) == expected  # a second merge changes nothing


def test_the_stack_output_is_split_on_newlines_only() -> None:
    assert parse_env_lines("A=1\nB=x\x0cy\r\nC=2") == {"A": "1", "B": "x\x0cy", "C": "2"}


def write(path: Path) -> None:
    write_env_file(path, VALUES)


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "app.env"
    target.parent.mkdir()
    target.write_text("AWS_KMS_KEY_ID=stale\n")
    link = tmp_path / ".env"
    link.symlink_to(target)
    write(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "AWS_KMS_KEY_ID=k-2" in target.read_text()


def test_hard_links_stay_linked(tmp_path: Path) -> None:
    first = tmp_path / "a.env"
    first.write_text("AWS_KMS_KEY_ID=stale\n")
    second = tmp_path / "b.env"
    os.link(first, second)
    write(first)
    assert first.stat().st_ino == second.stat().st_ino and first.stat().st_nlink == 2
    assert "AWS_KMS_KEY_ID=k-2" in second.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.env", "b.env"]  # no backup left behind


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another owner needs root")
def test_owner_group_and_mode_are_kept(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("DB=x\n")
    os.chown(path, 1234, 1234)
    path.chmod(0o640)
    write(path)
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 1234, 0o640)
    assert path.read_text() == "DB=x\n" + APPENDED


def test_a_new_file_is_owner_only_in_an_existing_directory(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == APPENDED


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: (p.write_text("A=1\n"), p.chmod(0o444)), "is read-only"),
    (lambda p: p.write_bytes(b"A=caf\xe9\n"), r"is not UTF-8 text \(byte 5"),
    (lambda p: None, "the directory"),
])
def test_unusable_targets_are_refused_and_left_as_they_are(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / ".env" if message != "the directory" else tmp_path / "missing" / ".env"
    make(path)  # type: ignore[operator]
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(DeployError, match=message):
        check_env_target(path)
    with pytest.raises(DeployError, match=message):
        write(path)
    assert (path.read_bytes() if path.is_file() else None) == before
    assert not (tmp_path / "missing").exists()  # no directory is ever created


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / ".env"
    path.write_text("AWS_KMS_KEY_ID=stale\n")

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write(path)
    assert path.read_text() == "AWS_KMS_KEY_ID=stale\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_a_failed_in_place_write_puts_the_old_content_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hard-linked file is rewritten in place; if that fails after truncating, it is restored."""
    path = tmp_path / ".env"
    path.write_text("AWS_KMS_KEY_ID=stale\n")
    os.link(path, tmp_path / "other.env")
    real_write, calls = os.write, []

    def failing_write(fd: int, data: bytes) -> int:
        calls.append(bytes(data))
        if b"k-2" in bytes(data):
            raise OSError(5, "Input/output error")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError, match="Input/output error"):
        write(path)
    assert path.read_text() == (tmp_path / "other.env").read_text() == "AWS_KMS_KEY_ID=stale\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", "other.env"]
