"""Validate: the values inside a well-shaped policy (docs/policy-semantics.md).

*Compatible* mode accepts what AWS accepts and warns about the rest; *strict* mode also turns
likely mistakes (duplicate Sids, unknown execute-api actions, malformed variables, Bool values
that are not booleans, empty value lists, execute-api resources no request can match) into
errors. Given the API the policy is attached to, resources naming another API, region or
account are reported too (:func:`iamgate.policy.names.resource_problems`).
"""

from __future__ import annotations

import re
from typing import Final

from .ast import ConditionClause, Effect, Policy, PrincipalEntry, Statement, Text
from .compile import ApiRef
from .conditions import Atom
from .diagnostics import Diagnostic, Location, Severity, did_you_mean
from .extension_keys import canonical, is_extension_key, key_problem
from .names import resource_problems
from .operators import Family
from .request import Context
from .values import read_base64, read_bool, read_date, read_network, read_number
from .variables import Var, read_template

__all__ = ["EXECUTE_API_ACTIONS", "RESOURCE_CODES", "validate"]

EXECUTE_API_ACTIONS = ("Invoke", "InvalidateCache", "ManageConnections")

_ACTION = re.compile(r"(?P<service>[^:]*):(?P<name>.*)", re.S)
_SERVICE = re.compile(r"[A-Za-z0-9-]+")
_ACCOUNT = re.compile(r"[0-9]{12}")
_UNIQUE_ID = re.compile(r"A(?:IDA|ROA|GPA|NPA|NPS|SIA|KIA|3T)[A-Z0-9]{12,}")
_PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):"
    r"(?P<service>iam|sts)::(?P<account>[0-9]{12}):(?P<rest>.+)",
    re.S,
)
_CONDITION_KEY = re.compile(r"[A-Za-z0-9-]+:\S.*", re.S)
_SHORTHAND = "execute-api:/"

# execute-api resources no request can match (names.resource_problems): warnings, errors in strict
RESOURCE_CODES: Final = tuple(
    f"policy.validate.{name}"
    for name in ("invalid-account-id", "invalid-region", "unknown-method", "other-api")
)

# problem codes that strict mode promotes from warning to error
_STRICT = frozenset(
    {
        *(code.removeprefix("policy.validate.") for code in RESOURCE_CODES),
        "duplicate-sid",
        "unknown-action",
        "malformed-variable",
        "invalid-bool",
        "empty-values",
        "variables-ignored",
        "not-an-arn",
        "unique-id-principal",
    }
)


class _Validator:
    def __init__(
        self, strict: bool, api: ApiRef | None, strict_aws: bool = False, aws_notes: bool = False
    ) -> None:
        self.strict = strict
        self.strict_aws = strict_aws
        self.aws_notes = aws_notes
        self.api = api
        self.diags: list[Diagnostic] = []

    def report(
        self,
        code: str,
        location: Location,
        message: str,
        help: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        if severity is Severity.WARNING and self.strict and code in _STRICT:
            severity = Severity.ERROR
        self.diags.append(Diagnostic(f"policy.validate.{code}", severity, message, location, help))

    def warn(self, code: str, location: Location, message: str, help: str | None = None) -> None:
        self.report(code, location, message, help, Severity.WARNING)

    # --------------------------------------------------------------------------------------
    def policy(self, policy: Policy) -> None:
        seen: dict[str, Statement] = {}
        for st in policy.statements:
            if st.sid is not None:
                if st.sid in seen:
                    self.warn(
                        "duplicate-sid",
                        st.location,
                        f"Sid '{st.sid}' is used by statements {seen[st.sid].index} and {st.index}",
                        "IAM requires Sids to be unique within a policy; rename one",
                    )
                else:
                    seen[st.sid] = st
            self.statement(policy, st)

    def statement(self, policy: Policy, st: Statement) -> None:
        if st.principals is not None:
            for entry in st.principals:
                self.principal(entry, st)
        for action in st.actions:
            self.action(action, "NotAction" if st.not_action else "Action")
        for resource in st.resources:
            self.resource(policy, resource, "NotResource" if st.not_resource else "Resource")
        for clause in st.conditions:
            self.clause(policy, clause)
            if is_extension_key(clause.key):
                self.extension_key(policy, st, clause)

    def principal(self, entry: PrincipalEntry, st: Statement) -> None:
        what = "NotPrincipal" if st.not_principal else "Principal"
        value = entry.value
        if entry.kind in ("*",):
            return
        if entry.kind != "AWS":
            if not value or value.strip() != value:
                self.report(
                    "invalid-principal",
                    entry.location,
                    f"{what}.{entry.kind} value '{value}' is empty or padded with spaces",
                )
            elif "*" in value:
                self.report(
                    "principal-partial-wildcard",
                    entry.location,
                    f"{what}.{entry.kind} value '{value}' contains a wildcard",
                    'principals take no wildcards; use "*" alone, or a condition on '
                    "aws:PrincipalArn with ArnLike",
                )
            return
        if value == "*":
            return
        if "*" in value or "?" in value:
            self.report(
                "principal-partial-wildcard",
                entry.location,
                f"{what} '{value}' contains a wildcard; principals accept only the whole value \"*\"",
                'to match several roles use "*" with a Condition such as '
                '{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/ci-*"}}',
            )
            return
        if _ACCOUNT.fullmatch(value):
            return
        if _UNIQUE_ID.fullmatch(value):
            self.warn(
                "unique-id-principal",
                entry.location,
                f"{what} '{value}' is an IAM unique id; AWS shows one when the named user or role "
                "was deleted, and it never matches a caller again",
                "name the user or role by its ARN",
            )
            return
        m = _PRINCIPAL_ARN.fullmatch(value)
        if not m:
            self.report(
                "invalid-principal",
                entry.location,
                f"{what} '{value}' is not an account id or an IAM/STS principal ARN",
                "use a 12-digit account id, arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME, "
                "arn:aws:iam::ACCOUNT:role/NAME or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION",
            )
            return
        service, rest = m.group("service"), m.group("rest")
        iam_kinds = ("root", "user/", "role/")
        sts_kinds = ("assumed-role/", "federated-user/")
        ok = (
            service == "iam"
            and (rest == "root" or (rest.startswith(iam_kinds[1:]) and not rest.endswith("/")))
        ) or (service == "sts" and rest.startswith(sts_kinds) and not rest.endswith("/"))
        if service == "sts" and rest.startswith("assumed-role/") and rest.count("/") < 2:
            ok = False
        if not ok:
            self.report(
                "invalid-principal",
                entry.location,
                f"{what} '{value}' is not a principal AWS accepts (root, user, role, assumed-role "
                "session or federated user)",
                "IAM groups and other resources cannot be principals",
            )

    def action(self, action: Text, what: str) -> None:
        value = action.value
        if value == "*":
            return
        m = _ACTION.fullmatch(value)
        if m is None:
            self.report(
                "invalid-action",
                action.location,
                f"{what} '{value}' has no service prefix",
                "write it as service:Action, e.g. execute-api:Invoke",
            )
            return
        service, name = m.group("service"), m.group("name")
        if ":" in name:
            self.report(
                "invalid-action",
                action.location,
                f"{what} '{value}' contains more than one colon",
                "an action is service:Action, e.g. execute-api:Invoke",
            )
            return
        if not service:
            self.report(
                "invalid-action",
                action.location,
                f"{what} '{value}' has an empty service prefix",
                "write it as service:Action, e.g. execute-api:Invoke",
            )
            return
        if not _SERVICE.fullmatch(service):
            self.warn(
                "wildcard-service",
                action.location,
                f"{what} '{value}': the service prefix '{service}' is compared literally and never "
                "matches; wildcards only work in the action name",
                "write execute-api:* for every execute-api action",
            )
            return
        if service.lower() == "execute-api" and name and "*" not in name and "?" not in name:
            known = {a.lower(): a for a in EXECUTE_API_ACTIONS}
            if name.lower() not in known:
                hint = did_you_mean(name, EXECUTE_API_ACTIONS)
                self.warn(
                    "unknown-action",
                    action.location,
                    f"{what} '{value}' is not an execute-api action and matches no request",
                    (hint + " " if hint else "") + "execute-api actions: " + ", ".join(EXECUTE_API_ACTIONS),
                )
        if not name.strip():
            self.warn(
                "empty-action",
                action.location,
                f"{what} '{value}' has an empty action name and matches nothing",
            )

    def resource(self, policy: Policy, resource: Text, what: str) -> None:
        value = resource.value
        if value == "*" or value.startswith(_SHORTHAND):
            pass
        elif not value.startswith("arn:"):
            self.report(
                "invalid-resource",
                resource.location,
                f"{what} '{value}' must be an ARN, \"*\" or the execute-api:/ shorthand",
                "for API Gateway write execute-api:/STAGE/METHOD/PATH (e.g. execute-api:/prod/GET/pets) "
                "or arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH",
            )
            return
        if value != "*":
            for problem in resource_problems(value, what, self.api):
                self.warn(problem.code, resource.location, problem.message, problem.help)
        self.template_checks(policy, value, resource.location, what, resource_part_only=True)

    def template_checks(
        self,
        policy: Policy,
        value: str,
        location: Location,
        what: str,
        *,
        resource_part_only: bool = False,
    ) -> None:
        if "${" not in value:
            return
        if not policy.variables_enabled:
            self.warn(
                "variables-ignored",
                location,
                f"{what} '{value}' contains '${{', but policy variables need \"Version\": \"2012-10-17\"; "
                "here it is literal text",
                'add "Version": "2012-10-17" at the top of the policy',
            )
            return
        text = value
        if resource_part_only and value.startswith("arn:"):
            pieces = value.split(":", 5)
            if any("${" in p for p in pieces[:5]):
                self.warn(
                    "variable-outside-resource-part",
                    location,
                    f"{what} '{value}': variables are only expanded in the resource part of an ARN "
                    "(after the fifth colon); elsewhere they are literal text",
                )
            text = pieces[5] if len(pieces) == 6 else ""
        _, problems = read_template(text, variables=True)
        for problem in problems:
            self.warn(
                "malformed-variable",
                location,
                f"{what}: {problem}",
                "write ${key} or ${key, 'default'}",
            )

    def clause(self, policy: Policy, clause: ConditionClause) -> None:
        spec, key = clause.operator, clause.key
        if not _CONDITION_KEY.fullmatch(key):
            self.report(
                "invalid-condition-key",
                clause.location,
                f"condition key '{key}' has no vendor prefix",
                "condition keys look like aws:SourceIp or execute-api:viaDomainArn",
            )
        if not clause.values:
            self.warn(
                "empty-values",
                clause.location,
                f"{spec.name} on {key} has no values: a positive operator is then never true and a "
                "negated one always true",
                "give at least one value",
            )
        family = spec.family
        for value in clause.values:
            text = value.value
            where = f"{spec.name} value '{text}'"
            if family is Family.NUMERIC and read_number(text) is None:
                self.report(
                    "invalid-number",
                    value.location,
                    f"{where} is not a number",
                    'numeric operators take integers or decimals such as 10 or "2.5"',
                )
            elif family is Family.DATE and read_date(text) is None:
                self.report(
                    "invalid-date",
                    value.location,
                    f"{where} is not a date",
                    "use ISO 8601 such as 2026-01-31T23:59:59Z, or epoch seconds such as 1767225600",
                )
            elif family is Family.IP and read_network(text) is None:
                self.report(
                    "invalid-ip",
                    value.location,
                    f"{where} is not an IPv4 or IPv6 address or CIDR",
                    "for example 203.0.113.0/24 or 2001:db8::/32",
                )
            elif family is Family.BINARY and read_base64(text) is None:
                self.report(
                    "invalid-base64",
                    value.location,
                    f"{where} is not base64",
                    "BinaryEquals compares base64-encoded bytes",
                )
            elif family is Family.NULL and read_bool(text) is None:
                self.report(
                    "invalid-null-value",
                    value.location,
                    f"{where} must be true or false",
                    '"true": the key is absent; "false": the key is present',
                )
            elif family is Family.BOOL and read_bool(text) is None and not self.is_variable(policy, text):
                self.warn(
                    "invalid-bool",
                    value.location,
                    f"{where} is not true or false; it never matches",
                    'Bool compares with "true" or "false"',
                )
            elif family is Family.ARN and not self.is_variable(policy, text) and not _arn_like(text):
                self.warn(
                    "not-an-arn",
                    value.location,
                    f"{where} is not an ARN (six colon-separated parts) and can only match ARNs "
                    "with the same number of parts",
                    "ARN operators compare arn:partition:service:region:account:resource part by part",
                )
            if spec.variables:
                self.template_checks(policy, text, value.location, f"{spec.name} value")
            elif "${" in text and policy.variables_enabled and family is not Family.NULL:
                self.warn(
                    "variables-ignored",
                    value.location,
                    f"{where}: {spec.name} does not expand policy variables; the text is literal",
                )

    def extension_key(self, policy: Policy, st: Statement, clause: ConditionClause) -> None:
        """A key in iamgate's namespace: an unknown one is an error (a typo: it would always be
        absent); a known one is a note saying what AWS, which has no such key, would decide;
        ``strict_aws`` refuses it."""
        key = clause.key
        problem = key_problem(key)
        if problem is not None:
            message, hint = problem
            self.report("unknown-iamgate-key", clause.location, message, hint)
            return
        if self.strict_aws:
            self.report(
                "not-an-aws-key",
                clause.location,
                f"{canonical(key)} is iamgate's own condition key; AWS has no such key",
                "--strict-aws refuses iamgate's keys: drop it, or validate without --strict-aws",
            )
            return
        if not self.aws_notes:
            return
        # what the clause is where the key is absent, as it always is on AWS: the same Atom the
        # evaluator builds, given a context without it
        variables = policy.variables_enabled and clause.operator.variables
        templates = tuple(read_template(v.value, variables=variables)[0] for v in clause.values)
        holds = Atom(clause.operator, key, templates).evaluate(Context())
        effect = "Allow" if st.effect is Effect.ALLOW else "Deny"
        if holds:
            outcome = f"always true there, so this {effect} does not depend on it on AWS"
        else:
            outcome = f"always false there, so this {effect} statement {st.label} never applies on AWS"
        looser = st.effect is not Effect.ALLOW and not holds
        self.report(
            "iamgate-key",
            clause.location,
            f"{canonical(key)} is iamgate's own condition key: AWS treats it as absent, and this "
            f"{clause.operator.name} condition is {outcome}",
            "the same policy on AWS is looser than on iamgate (a Deny that cannot apply)"
            if looser
            else "the same policy on AWS is at least as strict as on iamgate",
            Severity.WARNING if looser else Severity.INFO,
        )

    @staticmethod
    def is_variable(policy: Policy, text: str) -> bool:
        if not policy.variables_enabled:
            return False
        items, _ = read_template(text, variables=True)
        return any(isinstance(it, Var) for it in items)


def _arn_like(text: str) -> bool:
    return text.count(":") >= 5 or (text.endswith("*"))


def validate(
    policy: Policy,
    *,
    strict: bool = False,
    api: ApiRef | None = None,
    strict_aws: bool = False,
    aws_notes: bool = False,
) -> list[Diagnostic]:
    """Every problem in ``policy``'s values; ``api`` (the API it is attached to, when known)
    also reports resources that name another API; ``strict_aws`` refuses iamgate's own
    condition keys (``iamgate:...``), which AWS does not have, and ``aws_notes`` says for each
    condition on one what AWS would make of it (``iamgate policy validate`` asks for them; a
    gateway loading its configuration does not)."""
    v = _Validator(strict, api, strict_aws, aws_notes)
    v.policy(policy)
    return v.diags
