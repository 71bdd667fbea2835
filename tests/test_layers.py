"""The layers import one way, and a consumer pays only for what it uses.

config -> template -> derived -> deploy -> cli: a module may import its own layer and the ones
before it, never one after (cli may import deploy lazily, inside the command that needs it).
Checked on the source (every import statement, at any depth), and in a fresh interpreter for
what ``import scrybe_kms`` and a build really load."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "scrybe_kms"
LAYERS = ["config", "template", "derived", "deploy", "cli"]
#: Third-party packages a layer must never import.
FORBIDDEN = {
    "config": {"troposphere", "awacs", "boto3", "botocore", "cfnlint", "principalmapper"},
    "template": {"boto3", "botocore", "cfnlint", "principalmapper"},
    "derived": {"boto3", "botocore", "cfnlint", "principalmapper", "troposphere"},
    "deploy": {"principalmapper"},
    "cli": {"principalmapper"},
}


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_itself_and_the_layers_before_it(layer: str) -> None:
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    wrong = []
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "scrybe_kms" and len(parts) > 1 and parts[1] in LAYERS and parts[1] not in allowed:
                lazy_deploy = layer == "cli" and parts[1] == "deploy"
                if not lazy_deploy:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
            if parts[0] in FORBIDDEN[layer]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_cli_imports_deploy_tooling_only_inside_the_command() -> None:
    tree = ast.parse((PACKAGE / "cli" / "main.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("scrybe_kms.deploy")]


def loaded(code: str) -> set[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


def test_import_loads_no_builder_dependency_evaluator_or_aws_sdk() -> None:
    assert not loaded("import scrybe_kms") & {"troposphere", "awacs", "botocore", "boto3", "principalmapper",
                                             "cfnlint"}


def test_an_import_helper_loads_no_aws_sdk() -> None:
    assert not loaded("import scrybe_kms; scrybe_kms.kms_key_arn('production')") & {"botocore", "boto3", "cfnlint"}


def test_a_full_build_loads_no_aws_sdk_or_linter(tmp_path: Path) -> None:
    modules = loaded(f"from scrybe_kms.cli import main; main(['build', '--out', {str(tmp_path)!r}, "
                     f"'--stacks', {str(ROOT / 'stacks')!r}])")
    assert not modules & {"botocore", "boto3", "cfnlint", "principalmapper"}
