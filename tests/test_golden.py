"""out/ is committed and must equal what the build produces, byte for byte."""

from __future__ import annotations

import difflib

from scrybe_kms.cli.artifacts import artifacts
from scrybe_kms.config import EnvironmentConfig
from tests.helpers import OUT


def test_out_matches_the_build(env: str, cfg: EnvironmentConfig) -> None:
    for name, content in artifacts(cfg).items():
        committed = (OUT / name).read_text(encoding="utf-8") if (OUT / name).exists() else ""
        if committed != content:
            diff = "".join(difflib.unified_diff(committed.splitlines(True), content.splitlines(True),
                                                f"out/{name} (committed)", f"out/{name} (built)", n=2))
            raise AssertionError(f"out/{name} is stale; run `tox -e build` and commit it.\n{diff[:4000]}")


def test_build_is_deterministic(cfg: EnvironmentConfig) -> None:
    first, second = artifacts(cfg), artifacts(cfg)
    assert first == second
    text = first[f"{cfg.environment}.json"]
    assert text.endswith("}\n") and "\r" not in text


def test_no_stray_files_in_out(configs: dict[str, EnvironmentConfig]) -> None:
    expected = {name for cfg in configs.values() for name in artifacts(cfg)}
    assert {p.name for p in OUT.iterdir()} == expected


def test_templates_deploy_inline(rendered: dict[str, str]) -> None:
    """`aws cloudformation deploy --template-file` sends the body inline: 51,200 bytes at most."""
    from scrybe_kms.template import MAX_TEMPLATE_BODY

    for text in rendered.values():
        assert len(text.encode()) <= MAX_TEMPLATE_BODY - 4096, "less than 4 KiB headroom left"


def test_an_oversized_template_is_refused_not_written() -> None:
    import pytest

    from scrybe_kms.template import TemplateTooLarge, render
    from tests.helpers import config

    many = [f"alias/scrybe-phi-extra-{'x' * 200}-{i}" for i in range(60)]
    with pytest.raises(TemplateTooLarge, match=r"the production template is \d+ bytes, over CloudFormation's 51200"):
        render(config(additional_aliases=many))
