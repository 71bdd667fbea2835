"""out/ is committed and must equal what the build produces, byte for byte."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

from scrybe_kms.cli.artifacts import artifacts
from scrybe_kms.config import EnvironmentConfig
from tests.helpers import OUT, ROOT


def test_out_matches_the_build(env: str, cfg: EnvironmentConfig) -> None:
    for name, content in artifacts(cfg).items():
        committed = (OUT / name).read_text(encoding="utf-8") if (OUT / name).exists() else ""
        if committed != content:
            diff = "".join(difflib.unified_diff(committed.splitlines(True), content.splitlines(True),
                                                f"out/{name} (committed)", f"out/{name} (built)", n=2))
            raise AssertionError(f"out/{name} is stale; run `tox -e build` and commit it.\n{diff[:4000]}")


def _build_in_fresh_process(out: Path, seed: str) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "scrybe_kms", "build", "--out", str(out), "--stacks", str(ROOT / "stacks")],
                   env=env, check=True, capture_output=True, timeout=120)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_build_is_deterministic_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    """Set and dict ordering that depends on PYTHONHASHSEED would differ between these runs."""
    builds = [_build_in_fresh_process(tmp_path / seed, seed) for seed in ("0", "1", "4242")]
    assert builds[0] == builds[1] == builds[2]
    for name, content in builds[0].items():
        assert content.endswith(b"\n") and b"\r" not in content, name


def test_no_stray_files_in_out(configs: dict[str, EnvironmentConfig]) -> None:
    expected = {name for cfg in configs.values() for name in artifacts(cfg)}
    assert {p.name for p in OUT.iterdir()} == expected


def test_templates_deploy_inline(rendered: dict[str, str]) -> None:
    """`aws cloudformation deploy --template-file` sends the body inline: 51,200 bytes at most."""
    from scrybe_kms.template import MAX_TEMPLATE_BODY

    for text in rendered.values():
        # 1 KiB: an alias or a role more must still fit (docs/decisions.md D21: the next growth, the
        # alarms of issue 11, needs the alarm stack split out first).
        assert len(text.encode()) <= MAX_TEMPLATE_BODY - 1024, "less than 1 KiB headroom left"


def test_an_oversized_template_is_refused_not_written() -> None:
    import pytest

    from scrybe_kms.template import TemplateTooLarge, render
    from tests.helpers import config

    many = [f"alias/scrybe-phi-extra-{'x' * 200}-{i}" for i in range(60)]
    with pytest.raises(TemplateTooLarge, match=r"the production template is \d+ bytes, over CloudFormation's 51200"):
        render(config(additional_aliases=many))
