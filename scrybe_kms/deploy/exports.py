"""The alarm stack reads the key stack's ARNs with ``Fn::ImportValue``: which exports a template
imports, and which of them the account does not export (yet).

Checked with ListExports before a change set is created, so a missing export is told apart from
any other failure by what the account holds, not by the wording of an error (CloudFormation fails
the change set with "No export named ... found"; LocalStack rejects CreateChangeSet with an
unrelated "Unresolved resource dependencies" message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scrybe_kms.deploy.errors import aws_errors

__all__ = ["exported_names", "imported_exports", "missing_exports"]


def imported_exports(template: Mapping[str, Any]) -> set[str]:
    """The export names ``template`` imports by a literal ``Fn::ImportValue``."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "Fn::ImportValue" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(template)
    return found


def missing_exports(cf: Any, template: Mapping[str, Any]) -> list[str]:
    """The exports ``template`` imports that the account does not have; no call if it imports none."""
    wanted = imported_exports(template)
    if not wanted:
        return []
    with aws_errors("list the stack exports"):
        for page in cf.get_paginator("list_exports").paginate():
            wanted -= {str(export["Name"]) for export in page.get("Exports", [])}
            if not wanted:
                break
    return sorted(wanted)


def exported_names(template: Mapping[str, Any]) -> set[str]:
    """The export names ``template``'s outputs declare (literal names only)."""
    names = (output.get("Export", {}).get("Name") for output in template.get("Outputs", {}).values())
    return {name for name in names if isinstance(name, str)}
