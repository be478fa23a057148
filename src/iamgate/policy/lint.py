"""Lint: findings about valid policies that are risky, pointless or not what they seem.

In the spirit of IAM Access Analyzer's policy checks, tuned to API Gateway resource policies
(the rules of docs/policy-semantics.md and their pitfalls). Works on the AST only and never decides a request:
a finding is a :class:`Diagnostic` with code ``policy.lint.<name>``, the location of the
element at fault and, in ``help``, the suggested fix. The codes and what each one means are in
``docs/lint.md``; :data:`LINT_CODES` lists them.

Checks that compare statements (``shadowed-by-deny``, the guard that quiets ``public-allow``)
treat patterns as text and answer "covered" only when sure: actions are compared over the three
execute-api actions, the only ones API Gateway evaluates; resources with the glob matchers of
``patterns``, giving up on policy variables, on mixed shorthand/ARN forms and on a ``?`` that
could stand for a ``*`` of the covered pattern.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Final

from .ast import ConditionClause, Effect, Policy, PrincipalEntry, Statement, Text
from .compile import SHORTHAND, ActionMatcher
from .diagnostics import Diagnostic, Location, Severity, did_you_mean
from .extension_keys import Source, canonical, is_extension_key, source_of
from .operators import Family, SetOp
from .patterns import ArnMatcher, GlobMatcher, fold_service, glob_from_text
from .validate import EXECUTE_API_ACTIONS
from .values import IPNetwork, read_bool, read_date, read_network

__all__ = ["ENDPOINT_TYPES", "LINT_CODES", "SUPPLIED_KEYS", "lint_policy"]

ENDPOINT_TYPES: Final = ("REGIONAL", "PRIVATE", "EDGE")

LINT_CODES: Final = tuple(
    f"policy.lint.{name}"
    for name in (
        "public-allow",
        "allow-not-principal",
        "allow-not-action",
        "allow-not-resource",
        "private-source-ip",
        "source-ip-on-private-api",
        "vpc-key-on-public-api",
        "if-exists-security-key",
        "for-all-values-allow",
        "shadowed-by-deny",
        "duplicate-statement",
        "unsupplied-condition-key",
        "wildcard-account",
        "principal-arn-session",
        "org-paths-plain-operator",
        "date-epoch-value",
        "numeric-date-key",
        "secure-transport-false",
        "not-principal-deny-layers",
        "non-execute-api-action",
        "non-execute-api-resource",
        "client-chosen-allow",
    )
)

# the request-context keys API Gateway supplies (its condition-key table; aws:PrincipalTag/<key> aside)
SUPPLIED_KEYS: Final = (
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SecureTransport",
    "aws:SourceIp",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:VpcSourceIp",
    "aws:Referer",
    "aws:UserAgent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalType",
    "aws:userid",
    "aws:username",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:TokenIssueTime",
    "aws:MultiFactorAuthPresent",
    "aws:MultiFactorAuthAge",
    "execute-api:viaDomainArn",
)
_SUPPLIED = frozenset(k.lower() for k in SUPPLIED_KEYS)
_TAG = "aws:principaltag/"
_SECURITY_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceIp",
        "aws:VpcSourceIp",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:SecureTransport",
        "aws:userid",
        "aws:username",
    )
)
_VPC_KEYS = frozenset({"aws:sourcevpc", "aws:sourcevpce", "aws:vpcsourceip"})
_DATE_KEYS = frozenset({"aws:currenttime", "aws:tokenissuetime"})  # ISO 8601 text, not numbers

_RESERVED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
    )
)
_RESERVED_V6 = tuple(ipaddress.IPv6Network(n) for n in ("fc00::/7", "fe80::/10", "::1/128"))

_EXECUTE_API = tuple(f"execute-api:{name}" for name in EXECUTE_API_ACTIONS)
_SERVICE = re.compile(r"[A-Za-z0-9-]+")
_DIGITS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_PLAUSIBLE_EPOCH = 1_000_000_000  # 2001-09-09: an all-digit date below this is surely not meant
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_IAM_ARN = re.compile(r"arn:(?P<p>[^:]+):(?P<svc>iam|sts)::(?P<account>[0-9]{12}):(?P<rest>.+)", re.S)


def lint_policy(policy: Policy, *, endpoint_type: str | None = None) -> list[Diagnostic]:
    """Every finding about ``policy``, ordered by position in the document.

    ``endpoint_type`` (REGIONAL, PRIVATE or EDGE, any case) enables the checks of condition
    keys that only one kind of endpoint supplies; an unknown value is a programming error.
    Statements with errors (``broken``) are skipped: lint is meant for valid policies.
    """
    endpoint = None
    if endpoint_type is not None:
        endpoint = endpoint_type.upper()
        if endpoint not in ENDPOINT_TYPES:
            raise ValueError(f"endpoint_type must be one of {', '.join(ENDPOINT_TYPES)}: {endpoint_type!r}")
    linter = _Linter(policy, endpoint)
    for st in linter.statements:
        linter.statement(st)
    linter.duplicates()
    linter.shadowed()
    return sorted(
        linter.found,
        key=lambda d: (d.location.line is None, d.location.line or 0, d.location.column or 0),
    )


# --- small readings of the AST ----------------------------------------------------------------
def _is_star(entry: PrincipalEntry) -> bool:
    return entry.kind == "*" or (entry.kind == "AWS" and entry.value == "*")


def _everyone(st: Statement) -> bool:
    """``Principal: "*"`` or ``{"AWS": "*"}``: the statement applies to every caller."""
    return st.principals is not None and not st.not_principal and any(_is_star(e) for e in st.principals)


def _when_absent(clause: ConditionClause) -> bool:
    """The clause's result when its key is absent from the request (the missing-key rule)."""
    spec = clause.operator
    if spec.base == "Null":
        return any(read_bool(v.value) is True for v in clause.values)
    if spec.if_exists:
        return True
    if spec.set_op is SetOp.FOR_ANY_VALUE:
        return False
    if spec.set_op is SetOp.FOR_ALL_VALUES:
        return True
    return spec.negated


def _outcome(clause: ConditionClause, st: Statement) -> str:
    if not _when_absent(clause):
        return "the condition is never true and the statement never applies"
    if st.effect is Effect.DENY:
        return "the condition is always true, so this Deny applies to every request it covers"
    return "the condition is always true and does not restrict this Allow"


def _requires_presence(st: Statement, key: str) -> bool:
    """The statement also asks ``"Null": {key: "false"}``: it never applies when key is absent."""
    return any(
        c.operator.base == "Null"
        and c.key.lower() == key
        and c.values
        and all(read_bool(v.value) is False for v in c.values)
        for c in st.conditions
    )


def _reserved(net: IPNetwork) -> IPNetwork | None:
    if isinstance(net, ipaddress.IPv4Network):
        return next((r for r in _RESERVED_V4 if net.subnet_of(r)), None)
    return next((r for r in _RESERVED_V6 if net.subnet_of(r)), None)


def _account_wildcard(value: str) -> bool:
    """A wildcard in the account (fifth) part of an ARN pattern, or a final ``*`` before it
    that absorbs it (``arn:aws:execute-api:us-east-1:*``, ``arn:*``)."""
    parts = value.split(":", 5)
    if len(parts) >= 5:
        return "*" in parts[4] or "?" in parts[4]
    return parts[-1].endswith("*")


# --- coverage: every request that ``covered`` applies to, ``cover`` applies to as well --------
def _execute_api_actions(st: Statement) -> list[str]:
    matchers = [ActionMatcher(a.value) for a in st.actions]
    return [x for x in _EXECUTE_API if any(m.match(x) for m in matchers) != st.not_action]


def _everything(pattern: str) -> bool:
    """``*`` (or ``arn:*``): every request ARN."""
    rest = pattern.removeprefix("arn:")
    return bool(rest) and not rest.strip("*")


def _resource_covers(cover: str, covered: str, variables: bool) -> bool:
    if _everything(cover):
        return True
    if variables and ("${" in cover or "${" in covered):
        return False
    if "?" in cover and "*" in covered:
        return False  # the ? might stand for one character of the *: not sure
    short = cover.startswith(SHORTHAND)
    if short != covered.startswith(SHORTHAND):
        return False  # which API the shorthand names is not known here
    if short:
        return GlobMatcher(glob_from_text(cover[len(SHORTHAND) :])).match(covered[len(SHORTHAND) :])
    parts = covered.split(":", 3)
    if len(parts) > 2:
        parts[2] = parts[2].lower()
    return ArnMatcher(fold_service(glob_from_text(cover))).match(":".join(parts))


def _covers(cover: Statement, covered: Statement, variables: bool) -> bool:
    """Whether ``cover`` (Action and Resource, no Not- forms) applies to every execute-api
    request that ``covered`` applies to, principals and conditions aside."""
    if cover.not_action or cover.not_resource:
        return False
    actions = _execute_api_actions(covered)
    wanted = [ActionMatcher(a.value) for a in cover.actions]
    if not actions or not all(any(m.match(x) for m in wanted) for x in actions):
        return False
    if covered.not_resource:
        return any(_everything(r.value) for r in cover.resources)
    return all(
        any(_resource_covers(c.value, r.value, variables) for c in cover.resources) for r in covered.resources
    )


def _signature(st: Statement) -> object:
    """What a statement means, Sid, order and spelling of list values aside."""
    principals = None
    if st.principals is not None:
        principals = frozenset(("AWS", "*") if _is_star(e) else (e.kind, e.value) for e in st.principals)
    conditions = frozenset(
        (c.operator.name, c.key.lower(), frozenset(v.value for v in c.values)) for c in st.conditions
    )
    return (
        st.effect,
        st.not_principal,
        principals,
        st.not_action,
        frozenset(a.value.lower() for a in st.actions),
        st.not_resource,
        frozenset(r.value for r in st.resources),
        conditions,
    )


class _Linter:
    def __init__(self, policy: Policy, endpoint: str | None) -> None:
        self.policy = policy
        # a statement with errors is in the AST only so that validation can report all of it
        self.statements = [st for st in policy.statements if not st.broken]
        self.endpoint = endpoint
        self.found: list[Diagnostic] = []

    def report(
        self, name: str, severity: Severity, location: Location, message: str, help: str | None = None
    ) -> None:
        self.found.append(Diagnostic(f"policy.lint.{name}", severity, message, location, help))

    def warn(self, name: str, location: Location, message: str, help: str | None = None) -> None:
        self.report(name, Severity.WARNING, location, message, help)

    def info(self, name: str, location: Location, message: str, help: str | None = None) -> None:
        self.report(name, Severity.INFO, location, message, help)

    # --- one statement --------------------------------------------------------------------
    def statement(self, st: Statement) -> None:
        if st.effect is Effect.ALLOW:
            self.allow_elements(st)
        elif st.not_principal and st.principals:
            self.not_principal_layers(st)
        for action in st.actions:
            self.action(st, action)
        for resource in st.resources:
            self.resource(st, resource)
        for clause in st.conditions:
            self.clause(st, clause)

    def allow_elements(self, st: Statement) -> None:
        star = None if st.not_principal else next((e for e in st.principals or () if _is_star(e)), None)
        if star is not None and st.conditions and _execute_api_actions(st):
            self.client_chosen(st)
        if star is not None and not st.conditions and _execute_api_actions(st) and not self.guarded(st):
            self.warn(
                "public-allow",
                star.location,
                f'statement {st.label} allows Principal "*" (every caller, anonymous ones '
                "included) without any Condition: the API is public",
                "if it is not meant to be public, name the callers "
                '({"AWS": "arn:aws:iam::111122223333:root"}) or add a Condition, e.g. IpAddress '
                "on aws:SourceIp or StringEquals on aws:SourceVpce",
            )
        if st.not_principal and st.principals and not any(_is_star(e) for e in st.principals):
            self.warn(
                "allow-not-principal",
                st.principals[0].location,
                f"statement {st.label} is an Allow with NotPrincipal, which AWS does not support: "
                "it grants every caller not listed, anonymous callers included (iamgate never "
                "grants a caller whose user, role, session or account is listed)",
                'use "Principal" with the callers to allow, or "Principal": "*" with a Condition on '
                "aws:PrincipalArn or aws:PrincipalAccount",
            )
        if st.not_action and st.actions:
            self.warn(
                "allow-not-action",
                st.actions[0].location,
                f"statement {st.label} is an Allow with NotAction: it grants every action except "
                + ", ".join(a.value for a in st.actions),
                'list what is granted with "Action", e.g. "execute-api:Invoke"',
            )
        if st.not_resource and st.resources:
            self.warn(
                "allow-not-resource",
                st.resources[0].location,
                f"statement {st.label} is an Allow with NotResource: it grants every resource except "
                + ", ".join(r.value for r in st.resources),
                'list what is granted with "Resource", e.g. "execute-api:/prod/GET/*"',
            )

    def client_chosen(self, st: Statement) -> None:
        """An Allow for everyone whose every condition reads a value the client chooses (a header,
        a query parameter, a path parameter): anyone can send the value."""
        sources = [source_of(c.key) for c in st.conditions]
        if not all(s is Source.CLIENT for s in sources):
            return
        keys = ", ".join(sorted({canonical(c.key) for c in st.conditions}))
        self.warn(
            "client-chosen-allow",
            st.conditions[0].location,
            f"statement {st.label} allows every caller on the strength of {keys} alone: the client "
            "chooses that value, so anyone who sends it is allowed",
            "rest the Allow on a value the gateway verifies as well: iamgate:JwtClaim/..., "
            "iamgate:ClientCert/..., iamgate:AuthorizerContext/..., iamgate:ApiKeyId, a Principal, "
            "aws:SourceIp; iamgate:RequestHeader/..., iamgate:QueryString/... and "
            "iamgate:PathParameter/... are not verified",
        )

    def guarded(self, allow: Statement) -> bool:
        """A Deny for everyone but some (NotPrincipal) or with a Condition covers the Allow: the
        usual "allow all, deny unless from this network" pattern, not a public API."""
        variables = self.policy.variables_enabled
        for d in self.statements:
            if d.effect is not Effect.DENY or not d.principals:
                continue
            if d.not_principal:
                restricts = not any(_is_star(e) for e in d.principals)  # NotPrincipal "*": nobody
            else:
                restricts = _everyone(d) and bool(d.conditions)
            if restricts and _covers(d, allow, variables):
                return True
        return False

    def not_principal_layers(self, st: Statement) -> None:
        """Spec 2.3: AWS checks the account, then the user or role, then the role session; a
        caller escapes a Deny + NotPrincipal only when every layer of it is listed."""
        entries = st.principals or ()
        accounts: set[str] = set()
        roles: set[tuple[str, str]] = set()
        sessions: set[tuple[str, str]] = set()
        for e in entries:
            m = _IAM_ARN.fullmatch(e.value) if e.kind == "AWS" else None
            if e.kind == "AWS" and _ACCOUNT_ID.fullmatch(e.value):
                accounts.add(e.value)
            elif m and m["svc"] == "iam" and m["rest"] == "root":
                accounts.add(m["account"])
            elif m and m["svc"] == "iam" and m["rest"].startswith("role/"):
                roles.add((m["account"], m["rest"].rsplit("/", 1)[1]))
            elif m and m["rest"].startswith("assumed-role/"):
                sessions.add((m["account"], m["rest"].split("/")[1]))
        for e in entries:
            m = _IAM_ARN.fullmatch(e.value) if e.kind == "AWS" else None
            if m is None or m["rest"] == "root":
                continue
            account, rest = m["account"], m["rest"]
            root = f"arn:{m['p']}:iam::{account}:root"
            missing: list[str] = []
            if account not in accounts:
                missing.append(f"its account ({root})")
            role = rest.split("/")[1] if rest.startswith("assumed-role/") else None
            if role is not None and (account, role) not in roles:
                missing.append(f"its role (arn:{m['p']}:iam::{account}:role/{role})")
            if missing:
                self.warn(
                    "not-principal-deny-layers",
                    e.location,
                    f"statement {st.label} is a Deny with NotPrincipal listing '{e.value}' without "
                    + " or ".join(missing)
                    + ": that layer is still denied, so this caller is denied too",
                    "list the session, its role and the account together, or use "
                    '"Principal": "*" with a Condition such as ArnNotEquals on aws:PrincipalArn',
                )
            elif rest.startswith("role/") and (account, rest.rsplit("/", 1)[1]) not in sessions:
                self.warn(
                    "not-principal-deny-layers",
                    e.location,
                    f"statement {st.label} is a Deny with NotPrincipal listing role '{e.value}' but no "
                    "session of it: callers using a role are its sessions, and each is excluded only "
                    "when its session ARN is listed too",
                    '"Principal": "*" with {"ArnNotEquals": {"aws:PrincipalArn": "'
                    + e.value
                    + '"}} exempts every session of the role (aws:PrincipalArn of a session is its role)',
                )

    def action(self, st: Statement, action: Text) -> None:
        service, sep, name = action.value.partition(":")
        if not sep or ":" in name or not name.strip() or not _SERVICE.fullmatch(service):
            return  # "*", or a problem validate reports
        where = "NotAction" if st.not_action else "Action"
        if service.lower() != "execute-api":
            self.info(
                "non-execute-api-action",
                action.location,
                f"{where} '{action.value}' is an action of '{service}', which API Gateway never "
                "evaluates; it has no effect here",
                "API Gateway resource policies control execute-api:Invoke (and InvalidateCache, "
                "ManageConnections)",
            )
        elif ("*" in name or "?" in name) and not any(
            ActionMatcher(action.value).match(x) for x in _EXECUTE_API
        ):
            self.info(
                "non-execute-api-action",
                action.location,
                f"{where} '{action.value}' matches no execute-api action and has no effect",
                "execute-api actions: " + ", ".join(EXECUTE_API_ACTIONS),
            )

    def resource(self, st: Statement, resource: Text) -> None:
        value = resource.value
        if not value.startswith("arn:"):
            return
        parts = value.split(":", 5)
        where = "NotResource" if st.not_resource else "Resource"
        if len(parts) > 3 or (len(parts) == 3 and not parts[2].endswith("*")):
            service = parts[2]
            if not GlobMatcher(glob_from_text(service.lower())).match("execute-api"):
                self.info(
                    "non-execute-api-resource",
                    resource.location,
                    f"{where} '{value}' is a resource of '{service}', not an API Gateway method; it "
                    "never matches a request",
                    "API Gateway methods are execute-api:/STAGE/METHOD/PATH or "
                    "arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH",
                )
        if st.effect is Effect.ALLOW and not st.not_resource and _account_wildcard(value):
            self.warn(
                "wildcard-account",
                resource.location,
                f"Resource '{value}' has a wildcard in the account position: it grants the same "
                "paths on APIs of any account",
                "write the API owner's account id, or use the execute-api:/STAGE/METHOD/PATH "
                "shorthand, which names only the API the policy is attached to",
            )

    # --- conditions ---------------------------------------------------------------------------
    def clause(self, st: Statement, clause: ConditionClause) -> None:
        spec, key, loc = clause.operator, clause.key.lower(), clause.location
        allow = st.effect is Effect.ALLOW
        tag = key.startswith(_TAG) and len(key) > len(_TAG)
        extension = is_extension_key(key) and source_of(key) is not None  # supplied by iamgate
        if key not in _SUPPLIED and not tag and not extension:
            hint = did_you_mean(clause.key, [*SUPPLIED_KEYS, "aws:PrincipalTag/"], cutoff=0.85)
            self.warn(
                "unsupplied-condition-key",
                loc,
                f"API Gateway never supplies condition key '{clause.key}' ({spec.name}): "
                + _outcome(clause, st),
                (hint + " " if hint else "")
                + "keys API Gateway supplies: "
                + ", ".join(SUPPLIED_KEYS)
                + ", aws:PrincipalTag/<key>",
            )
            return
        if key == "aws:sourceip" and self.endpoint == "PRIVATE":
            self.warn(
                "source-ip-on-private-api",
                loc,
                f"{spec.name} on aws:SourceIp: private APIs do not supply aws:SourceIp, so "
                + _outcome(clause, st),
                "on a private API test the caller's address with aws:VpcSourceIp, or the network "
                "with aws:SourceVpc / aws:SourceVpce",
            )
        if key in _VPC_KEYS and self.endpoint in ("REGIONAL", "EDGE"):
            self.warn(
                "vpc-key-on-public-api",
                loc,
                f"{spec.name} on {clause.key}: a {self.endpoint} endpoint never supplies VPC keys, so "
                + _outcome(clause, st),
                "VPC keys exist only on private APIs; on public endpoints restrict by aws:SourceIp",
            )
        security = key in _SECURITY_KEYS or tag or extension
        if spec.if_exists and security and not _requires_presence(st, key):
            self.report(
                "if-exists-security-key",
                Severity.WARNING if allow else Severity.INFO,
                loc,
                f"{spec.name} on {clause.key}: when the key is absent the condition is true, so "
                + (
                    "this Allow grants callers that do not have it"
                    if allow
                    else "this Deny applies to callers that do not have it"
                ),
                f"drop IfExists ({spec.name.removesuffix('IfExists')}) so that an absent key does not "
                f'match, or add {{"Null": {{"{clause.key}": "false"}}}}',
            )
        if allow and spec.set_op is SetOp.FOR_ALL_VALUES and not _requires_presence(st, key):
            self.warn(
                "for-all-values-allow",
                loc,
                f"{spec.name} on {clause.key} in an Allow is true when the key is absent: it opens "
                "the statement to callers without it, anonymous callers included",
                f'use ForAnyValue:, or add {{"Null": {{"{clause.key}": "false"}}}} to the statement',
            )
        if key == "aws:principalorgpaths" and spec.set_op is None and spec.base != "Null":
            self.warn(
                "org-paths-plain-operator",
                loc,
                f"{spec.name} on aws:PrincipalOrgPaths: the key is multivalued, and a plain operator "
                + ("is true only when it is absent" if _when_absent(clause) else "never matches it"),
                f"write ForAnyValue:{spec.name}",
            )
        self.values(st, clause, key, allow)

    def values(self, st: Statement, clause: ConditionClause, key: str, allow: bool) -> None:
        spec = clause.operator
        family = spec.family
        if family is Family.DATE:
            for v in clause.values:
                stamp = read_date(v.value)
                if _DIGITS.fullmatch(v.value) and stamp is not None and stamp < _PLAUSIBLE_EPOCH * 10**6:
                    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=stamp)
                    self.warn(
                        "date-epoch-value",
                        v.location,
                        f"{spec.name} value '{v.value}' is read as epoch seconds "
                        f"({when:%Y-%m-%dT%H:%M:%SZ}), not as a date",
                        "write the date in ISO 8601, e.g. 2026-01-01T00:00:00Z",
                    )
        if family is Family.NUMERIC and key in _DATE_KEYS:
            self.warn(
                "numeric-date-key",
                clause.location,
                f"{spec.name} on {clause.key} never matches: the key holds an ISO 8601 date, not a number",
                f"use a Date operator (Date{spec.base.removeprefix('Numeric')}) with {clause.key}, "
                "or the numeric operator with aws:EpochTime",
            )
        if family is Family.BOOL and key == "aws:securetransport":
            for v in clause.values:
                if read_bool(v.value) is False:
                    self.info(
                        "secure-transport-false",
                        v.location,
                        f"{spec.name} aws:SecureTransport '{v.value}' is never true on API Gateway: "
                        "execute-api endpoints accept HTTPS only",
                        "the statement never applies; remove it, or the condition",
                    )
        if family is Family.IP and key == "aws:sourceip" and self.endpoint != "PRIVATE":
            for v in clause.values:
                net = read_network(v.value)
                reserved = None if net is None else _reserved(net)
                if reserved is not None:
                    self.warn(
                        "private-source-ip",
                        v.location,
                        f"{spec.name} value '{v.value}' on aws:SourceIp is in the private or reserved "
                        f"range {reserved}: API Gateway's public endpoints never see such addresses",
                        "test public addresses, or use aws:VpcSourceIp on a private API; on iamgate, "
                        "clients inside the network or behind its trusted proxies can have such "
                        "addresses, so keep it if the policy is meant for that",
                    )
        if key == "aws:principalarn" and family in (Family.ARN, Family.STRING):
            self.principal_arn_values(st, clause, allow)

    def principal_arn_values(self, st: Statement, clause: ConditionClause, allow: bool) -> None:
        spec = clause.operator
        like = spec.family is Family.ARN or spec.positive == "StringLike"
        widens = allow != spec.negated  # an Allow that grants or a Deny that exempts
        for v in clause.values:
            text = v.value
            if self.policy.variables_enabled and spec.variables:
                text = text.replace("${*}", "x").replace("${?}", "x")
            m = _IAM_ARN.fullmatch(text)
            if m and m["svc"] == "sts" and m["rest"].startswith("assumed-role/"):
                role = m["rest"].split("/")[1]
                self.warn(
                    "principal-arn-session",
                    v.location,
                    f"{spec.name} value '{v.value}' on aws:PrincipalArn is a role session ARN, but for "
                    "a session aws:PrincipalArn is its role's ARN: this value matches no caller",
                    f"use the role ARN arn:{m['p']}:iam::{m['account']}:role/{role}, or test the "
                    "session name with aws:userid (ROLE_ID:SESSION)",
                )
            elif like and widens and _account_wildcard(text):
                self.warn(
                    "wildcard-account",
                    v.location,
                    f"{spec.name} value '{v.value}' on aws:PrincipalArn has a wildcard in the account "
                    "position: principals of any AWS account with that name match",
                    "write the account id, e.g. arn:aws:iam::111122223333:role/ci-*, or add "
                    "StringEquals on aws:PrincipalAccount or aws:PrincipalOrgID",
                )

    # --- the policy as a whole ----------------------------------------------------------------
    def duplicates(self) -> None:
        seen: dict[object, Statement] = {}
        for st in self.statements:
            first = seen.setdefault(_signature(st), st)
            if first is not st:
                self.warn(
                    "duplicate-statement",
                    st.location,
                    f"statement {st.label} repeats statement {first.label} (same effect, principal, "
                    "action, resource and condition)",
                    "remove one of them",
                )

    def shadowed(self) -> None:
        variables = self.policy.variables_enabled
        denies = [d for d in self.statements if d.effect is Effect.DENY and _everyone(d) and not d.conditions]
        for st in self.statements:
            if st.effect is not Effect.ALLOW:
                continue
            deny = next((d for d in denies if _covers(d, st, variables)), None)
            if deny is not None:
                self.warn(
                    "shadowed-by-deny",
                    st.location,
                    f"statement {st.label} never grants anything: every request it allows is denied "
                    f"by statement {deny.label}, an unconditional Deny for every caller",
                    "remove the Allow, or narrow the Deny's Action or Resource, or give it a Condition",
                )
