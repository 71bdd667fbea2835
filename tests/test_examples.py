"""examples/phi_consumer.py: a stack keeping PHI in S3, Aurora, DynamoDB and Secrets Manager under the
production key renders, lints clean at every cfn-lint level, and every service it uses is one the
production configuration lets its deployer reach the key through."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from scrybe_kms.config import EnvironmentConfig
from tests.helpers import ROOT
from tests.test_lint import findings

EXAMPLE = ROOT / "examples" / "phi_consumer.py"
#: Resource type -> the kms:ViaService name its service uses the key through.
SERVICE_OF = {"AWS::S3::Bucket": "s3", "AWS::RDS::DBCluster": "rds", "AWS::DynamoDB::Table": "dynamodb",
              "AWS::SecretsManager::Secret": "secretsmanager"}


def example() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("phi_consumer", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(json.loads(module.build().to_json()))


def test_consumer_example_lints_clean() -> None:
    assert findings(json.dumps(example()), "us-west-2") == []


def test_every_phi_resource_imports_the_production_key(configs: dict[str, EnvironmentConfig]) -> None:
    template = example()
    used = set()
    for title, resource in template["Resources"].items():
        text = json.dumps(resource["Properties"])
        assert '{"Fn::ImportValue": "scrybe-kms-production-KmsKeyArn"}' in text, title
        used.add(SERVICE_OF[resource["Type"]])
    assert used == {"s3", "rds", "dynamodb", "secretsmanager"}
    deployer = [u for u in configs["production"].service_key_users
                if u.role_arn.endswith("/scrybe-production-stack-deployer")]
    assert len(deployer) == 1 and used <= set(deployer[0].services)
