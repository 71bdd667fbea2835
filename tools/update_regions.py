"""Regenerate ``scrybe_kms/config/regions.json`` from the installed botocore's endpoint data.

The build validates ``aws_region`` against that packaged table, so a consumer's install needs no
botocore (32 MB) and a build never depends on which botocore happens to be installed (decision D22).
``tests/test_config.py::test_known_regions_are_botocores`` fails when the pinned botocore knows a
different set; then run ``python tools/update_regions.py`` and commit the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import botocore.session

TARGET = Path(__file__).resolve().parents[1] / "scrybe_kms" / "config" / "regions.json"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def regions() -> dict[str, str]:
    session = botocore.session.get_session()
    return {name: partition for partition in PARTITIONS
            for name in set(session.get_available_regions("kms", partition))
            & set(session.get_available_regions("cloudtrail", partition))}


def main() -> int:
    TARGET.write_text(json.dumps(dict(sorted(regions().items())), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
