"""The key policy evaluator, rule by rule, with policies in the shapes AWS documents.

Each test names the AWS page its expectation comes from. IAM User Guide pages are under
https://docs.aws.amazon.com/IAM/latest/UserGuide/ ("IAM:" below).
"""

from __future__ import annotations

from typing import Any

import pytest

from scrybe_kms.derived.evaluator import Decision, Request, UnsupportedPolicy, evaluate

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/other"
OUTSIDER = "arn:aws:iam::444455556666:role/outsider"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/audit"


def statement(effect: str = "Allow", principal: Any = "*", action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": "*", **extra}


def decide(*statements: dict[str, Any], role: str | None = ROLE, service: str | None = None,
           action: str = "kms:Decrypt", resource: str = KEY, iam_allows: bool = False,
           **context: str | list[str]) -> Decision:
    context = {k.replace("__", ":"): v for k, v in context.items()}
    return evaluate({"Version": "2012-10-17", "Statement": list(statements)},
                    Request(role, service, action, resource, context), iam_allows=iam_allows)


def allowed(*statements: dict[str, Any], **kwargs: Any) -> bool:
    return decide(*statements, **kwargs).allowed


def condition(block: dict[str, Any], effect: str = "Allow") -> dict[str, Any]:
    return statement(effect, Condition=block)


# --- Evaluation logic (IAM: reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html)

def test_explicit_deny_wins_over_allow() -> None:
    decision = decide(statement(Sid="Use"), statement("Deny", action="kms:Decrypt", Sid="NoDecrypt"))
    assert decision == Decision(False, "explicit deny", ("NoDecrypt",))
    assert decide(statement(Sid="Use"), statement("Deny", action="kms:Decrypt"), action="kms:Encrypt").allowed


def test_nothing_applicable_is_an_implicit_deny() -> None:
    assert decide(statement(principal={"AWS": OTHER_ROLE})) == Decision(False, "implicit deny")
    assert decide(statement(action="kms:Encrypt", Sid="Enc")) == Decision(False, "implicit deny")
    assert decide(statement(Sid="All")) == Decision(True, "allow", ("All",))


# --- Principal (IAM: reference_policies_elements_principal.html)

@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*"]}])
def test_star_matches_roles_services_and_anonymous_callers(principal: Any) -> None:
    assert allowed(statement(principal=principal))
    assert allowed(statement(principal=principal), role=None, service="cloudtrail.amazonaws.com")
    assert allowed(statement(principal=principal), role=None)


def test_aws_star_with_a_condition_allows_the_matching_role() -> None:
    """principalmapper 1.1.5 answered "no match" for this shape (a false deny)."""
    scoped = statement(principal={"AWS": "*"}, Condition={"ArnEquals": {"aws:PrincipalArn": ROLE}})
    assert allowed(scoped)
    assert not allowed(scoped, role=OTHER_ROLE)


def test_a_role_matches_its_arn_only() -> None:
    assert allowed(statement(principal={"AWS": ROLE}))
    assert allowed(statement(principal={"AWS": [OTHER_ROLE, ROLE]}))
    assert not allowed(statement(principal={"AWS": OTHER_ROLE}))
    assert not allowed(statement(principal={"AWS": ROLE}), role=None, service="cloudtrail.amazonaws.com")
    assert not allowed(statement(principal={"AWS": ROLE}), role=None)


def test_a_role_session_matches_through_aws_principal_arn() -> None:
    # IAM: reference_policies_condition-keys.html#condition-keys-principalarn (role sessions report the role ARN)
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/session"
    assert allowed(statement(principal={"AWS": ROLE}), role=session, aws__PrincipalArn=ROLE)
    assert not allowed(statement(principal={"AWS": ROLE}), role=session)


def test_a_service_matches_its_name_only() -> None:
    trail_only = statement(principal={"Service": "cloudtrail.amazonaws.com"})
    assert allowed(trail_only, role=None, service="cloudtrail.amazonaws.com")
    assert allowed(statement(principal={"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]}),
                   role=None, service="cloudwatch.amazonaws.com")
    assert not allowed(trail_only, role=None, service="logs.us-east-1.amazonaws.com")
    assert not allowed(trail_only)


@pytest.mark.parametrize("account", [f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT])
def test_an_account_principal_delegates_to_iam(account: str) -> None:
    # KMS: https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html (IAM policies need the
    # key policy's permission); IAM principal page: the account ARN and the bare ID behave the same.
    delegate = statement(principal={"AWS": account})
    assert not allowed(delegate)
    assert allowed(delegate, iam_allows=True)
    assert not allowed(delegate, role=OUTSIDER, iam_allows=True)
    assert allowed(delegate, role=f"arn:aws:iam::{ACCOUNT}:root")
    assert not allowed(statement(), statement("Deny", principal={"AWS": account}))
    assert allowed(statement(), statement("Deny", principal={"AWS": account}), role=OUTSIDER)


def test_not_principal_and_unknown_principal_types_raise() -> None:
    # IAM: reference_policies_elements_notprincipal.html; the evaluator models Principal only.
    with pytest.raises(UnsupportedPolicy, match="NotPrincipal"):
        decide({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "kms:*", "Resource": "*"})
    with pytest.raises(UnsupportedPolicy, match="Federated"):
        decide(statement(principal={"Federated": "cognito-identity.amazonaws.com"}))


# --- Action and Resource (IAM: reference_policies_elements_action.html, ..._resource.html)

@pytest.mark.parametrize(("action", "expected"), [
    ("kms:GenerateDataKey", True),
    ("kms:GenerateDataKeyWithoutPlaintext", True),
    ("kms:GenerateDataKeyPair", True),  # "*" is any run of characters: the Pair actions match too
    ("kms:GenerateDataKeyPairWithoutPlaintext", True),
    ("KMS:generatedatakey", True),  # prefix and action name are case-insensitive
    ("kms:Decrypt", False),
    ("s3:GenerateDataKey", False),
])
def test_action_wildcards(action: str, expected: bool) -> None:
    assert allowed(statement(action="kms:GenerateDataKey*"), action=action) is expected


def test_action_single_character_wildcard_and_not_action() -> None:
    assert allowed(statement(action="kms:?ecrypt"), action="kms:Decrypt")
    assert not allowed(statement(action="kms:?ecrypt"), action="kms:ReEncryptFrom")
    assert allowed(statement(action=None, NotAction="kms:Decrypt"), action="kms:Encrypt")
    assert not allowed(statement(action=None, NotAction=["kms:Encrypt", "kms:Decrypt"]))


def test_resource_wildcards_and_not_resource() -> None:
    def on(**element: Any) -> dict[str, Any]:
        return {"Effect": "Allow", "Principal": "*", "Action": "kms:*", **element}
    assert allowed(on(Resource=f"arn:aws:kms:*:{ACCOUNT}:key/*"))
    assert not allowed(on(Resource="arn:aws:kms:*:444455556666:key/*"))
    assert not allowed(on(Resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:KEY/*"))  # case-sensitive
    assert allowed(on(NotResource=f"arn:aws:kms:*:{ACCOUNT}:alias/*"))
    assert not allowed(on(NotResource="*"))
    with pytest.raises(UnsupportedPolicy, match="Resource"):
        decide({"Effect": "Allow", "Principal": "*", "Action": "kms:*"})


# --- Missing keys (IAM: reference_policies_elements_condition_operators.html, the "Important" box)

def test_string_not_like_on_a_missing_key_is_true_so_the_deny_applies() -> None:
    """principalmapper 1.1.5 ignored this condition (a false allow)."""
    deny = condition({"StringNotLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*"}}, "Deny")
    assert decide(statement(), deny).reason == "explicit deny"
    assert allowed(statement(), deny, kms__EncryptionContext__aws__cloudtrail__arn=TRAIL)


def test_bool_if_exists_false_on_a_missing_mfa_key_denies() -> None:
    # the MFA pattern: Allow with Bool "true", Deny with BoolIfExists "false"
    deny = condition({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, "Deny")
    assert not allowed(statement(), deny)
    assert not allowed(statement(), deny, aws__MultiFactorAuthPresent="false")
    assert allowed(statement(), deny, aws__MultiFactorAuthPresent="true")
    mfa_only = condition({"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    assert not allowed(mfa_only)
    assert allowed(mfa_only, aws__MultiFactorAuthPresent="true")


@pytest.mark.parametrize("operator", ["StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike",
                                      "StringEqualsIfExists", "ArnLikeIfExists", "BoolIfExists",
                                      "StringNotEqualsIfExists", "ForAllValues:StringEquals",
                                      "ForAllValues:StringLike"])
def test_conditions_true_on_a_missing_key(operator: str) -> None:
    assert allowed(condition({operator: {"aws:SourceArn": TRAIL}}))


@pytest.mark.parametrize("operator", ["StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike",
                                      "Bool", "NumericEquals", "ForAnyValue:StringEquals", "ForAnyValue:StringLike"])
def test_conditions_false_on_a_missing_key(operator: str) -> None:
    value = "1" if operator == "NumericEquals" else "true" if operator == "Bool" else TRAIL
    assert not allowed(condition({operator: {"aws:SourceArn": value}}))


def test_if_exists_compares_a_present_key() -> None:
    scoped = condition({"StringEqualsIfExists": {"aws:SourceArn": TRAIL}})
    assert allowed(scoped, aws__SourceArn=TRAIL)
    assert not allowed(scoped, aws__SourceArn=TRAIL + "x")


def test_null_checks_presence() -> None:
    present = condition({"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}})  # CloudTrail log readers
    assert allowed(present, kms__EncryptionContext__aws__cloudtrail__arn=TRAIL)
    assert not allowed(present)
    absent = condition({"Null": {"aws:TokenIssueTime": "true"}})
    assert allowed(absent)
    assert not allowed(absent, aws__TokenIssueTime="2026-01-01T00:00:00Z")


# --- Operators on present keys

def test_string_operators_and_case() -> None:
    # IAM: reference_policies_elements_condition.html (key names case-insensitive, values per operator)
    assert allowed(condition({"StringEquals": {"AWS:SOURCEARN": TRAIL}}), aws__SourceArn=TRAIL)
    assert not allowed(condition({"StringEquals": {"aws:SourceArn": TRAIL.upper()}}), aws__SourceArn=TRAIL)
    assert allowed(condition({"StringEqualsIgnoreCase": {"aws:SourceArn": TRAIL.upper()}}), aws__SourceArn=TRAIL)
    assert allowed(condition({"StringLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:*:trail/a?dit"}}),
                   aws__SourceArn=TRAIL)
    assert not allowed(condition({"StringNotEquals": {"aws:SourceArn": TRAIL}}), aws__SourceArn=TRAIL)


def test_arn_operators_match_segment_by_segment() -> None:
    # IAM condition operators page, "Amazon Resource Name (ARN) condition operators"
    like = condition({"ArnLike": {"aws:SourceArn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}})
    assert allowed(like, aws__SourceArn=TRAIL)
    assert not allowed(like, aws__SourceArn="arn:aws:cloudtrail:us-east-1:444455556666:trail/audit")
    assert not allowed(condition({"ArnLike": {"aws:SourceArn": "arn:aws:*:trail/*"}}), aws__SourceArn=TRAIL)
    group = "arn:aws:logs:us-east-1:111122223333:log-group:/scrybe/kms/dev/cloudtrail"
    assert allowed(condition({"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group}}),
                   kms__EncryptionContext__aws__logs__arn=group)
    assert not allowed(condition({"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": group}}),
                       kms__EncryptionContext__aws__logs__arn=group + "-other")
    assert allowed(condition({"ArnNotLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:*:trail/other"}}),
                   aws__SourceArn=TRAIL)


def test_numeric_equals() -> None:
    assert allowed(condition({"NumericEquals": {"aws:MultiFactorAuthAge": "3600"}}), aws__MultiFactorAuthAge="3600.0")
    assert not allowed(condition({"NumericEquals": {"aws:MultiFactorAuthAge": "3600"}}), aws__MultiFactorAuthAge="60")
    with pytest.raises(UnsupportedPolicy, match="number"):
        decide(condition({"NumericEquals": {"aws:MultiFactorAuthAge": "an hour"}}, "Deny"))


# --- Several keys and values (IAM: reference_policies_condition-logic-multiple-context-keys-or-values.html)

def test_multiple_values_for_one_key_are_ored() -> None:
    either = condition({"StringEquals": {"aws:SourceArn": [TRAIL, TRAIL + "2"]}})
    assert allowed(either, aws__SourceArn=TRAIL + "2")
    assert not allowed(either, aws__SourceArn=TRAIL + "3")


def test_multiple_values_under_a_negated_operator_are_nored() -> None:
    neither = condition({"StringNotEquals": {"aws:SourceArn": [TRAIL, TRAIL + "2"]}})
    assert not allowed(neither, aws__SourceArn=TRAIL + "2")
    assert allowed(neither, aws__SourceArn=TRAIL + "3")


def test_multiple_keys_under_one_operator_are_anded() -> None:
    both = condition({"StringEquals": {"aws:SourceArn": TRAIL, "aws:SourceAccount": ACCOUNT}})
    assert allowed(both, aws__SourceArn=TRAIL, aws__SourceAccount=ACCOUNT)
    assert not allowed(both, aws__SourceArn=TRAIL)
    assert not allowed(both, aws__SourceArn=TRAIL, aws__SourceAccount="444455556666")


def test_two_operators_are_anded() -> None:
    # the shape of CloudTrail's documented GenerateDataKey* statement
    any_trail = f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"
    trail = condition({"StringEquals": {"aws:SourceArn": TRAIL},
                       "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": any_trail}})
    assert allowed(trail, aws__SourceArn=TRAIL, kms__EncryptionContext__aws__cloudtrail__arn=TRAIL)
    assert not allowed(trail, aws__SourceArn=TRAIL)
    assert not allowed(trail, aws__SourceArn=TRAIL + "2", kms__EncryptionContext__aws__cloudtrail__arn=TRAIL)


def test_set_operators_on_multivalued_keys() -> None:
    # IAM: reference_policies_condition-single-vs-multi-valued-context-keys.html
    all_of = condition({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}})
    assert allowed(all_of, aws__TagKeys=["env"])
    assert not allowed(all_of, aws__TagKeys=["env", "owner"])
    any_of = condition({"ForAnyValue:StringLike": {"aws:TagKeys": ["te*"]}})
    assert allowed(any_of, aws__TagKeys=["env", "team"])
    assert not allowed(any_of, aws__TagKeys=["env"])
    with pytest.raises(UnsupportedPolicy, match="ForAnyValue:/ForAllValues:"):
        decide(condition({"StringEquals": {"aws:TagKeys": "team"}}), aws__TagKeys=["team", "env"])


# --- Refusals: never a silent allow or deny

@pytest.mark.parametrize("operator", ["StringEqualz", "DateGreaterThan", "IpAddress", "NullIfExists",
                                      "ForAnyValue:ArnLike", "ForSomeValues:StringEquals",
                                      "ForAllValues:StringEqualsIfExists"])
def test_unknown_or_unsupported_operators_raise(operator: str) -> None:
    unrelated = statement(principal={"AWS": OUTSIDER}, Condition={operator: {"aws:SourceArn": TRAIL}})
    with pytest.raises(ValueError, match="operator"):
        decide(statement(), unrelated)


@pytest.mark.parametrize(("bad", "message"), [
    ({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}, "Principal"),
    ({"Effect": "Permit", "Principal": "*", "Action": "kms:*", "Resource": "*"}, "Effect"),
    ({"Effect": "Allow", "Principal": "*", "Resource": "*"}, "Action"),
    ({"Effect": "Allow", "Principal": "*", "Action": "kms:*", "NotAction": "kms:X", "Resource": "*"}, "Action"),
    (statement(Condition={"StringEquals": {"aws:username": "${aws:username}"}}), "policy variables"),
    (statement(Bogus=1), "unknown statement elements"),
])
def test_malformed_statements_raise(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedPolicy, match=message):
        decide(bad)


def test_a_request_is_a_role_or_a_service_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        decide(statement(), service="cloudtrail.amazonaws.com")
