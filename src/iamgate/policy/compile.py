"""Compile: a validated policy into per-statement matchers (docs/policy-semantics.md).

Every statement becomes a :class:`CompiledStatement` that can answer, for one request, whether
its principal, action, resource and condition parts match. ``evaluate`` builds its indexes on
top of these and ``explain`` walks them one by one. Compilation is total on validated input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ast import Effect, Policy, PrincipalEntry, Statement
from .conditions import Atom, AtomTrace, Context
from .decision import ElementCheck, MatchKind, StatementRef
from .patterns import ArnMatcher, GlobMatcher, fold_service, glob_from_text
from .request import Caller, CallerKind
from .variables import Template, has_vars, read_template, resolve, template_text

__all__ = [
    "ApiRef",
    "CompiledStatement",
    "PrincipalSet",
    "ResourceEntry",
    "compile_statements",
    "expand_shorthand",
    "partition_of",
]

SHORTHAND = "execute-api:/"
_NONE: frozenset[Any] = frozenset()


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("eusc-"):
        return "aws-eusc"
    return "aws"


@dataclass(frozen=True, slots=True)
class ApiRef:
    """The API a resource policy is attached to: what ``execute-api:/...`` expands with."""

    region: str
    account: str
    api_id: str

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def arn_prefix(self) -> str:
        return f"arn:{self.partition}:execute-api:{self.region}:{self.account}:{self.api_id}"

    @classmethod
    def from_arn(cls, arn: str) -> ApiRef | None:
        """The API an execute-api method ARN belongs to, or None."""
        pieces = arn.split(":", 5)
        if len(pieces) != 6 or pieces[2].lower() != "execute-api":
            return None
        api_id = pieces[5].split("/", 1)[0]
        if not (pieces[3] and pieces[4] and api_id):
            return None
        return cls(pieces[3], pieces[4], api_id)


def expand_shorthand(resource: str, api: ApiRef | None) -> str:
    """``execute-api:/prod/GET/pets`` -> the full ARN of that API; text otherwise."""
    if api is not None and resource.startswith(SHORTHAND):
        return api.arn_prefix + resource[len(SHORTHAND) - 1 :]
    return resource


# --- principals -----------------------------------------------------------------------------
class PrincipalSet:
    """The entries of one Principal or NotPrincipal element, indexed for matching."""

    __slots__ = ("accounts", "exact", "roles", "star")

    def __init__(self, entries: tuple[PrincipalEntry, ...]) -> None:
        self.star = False
        accounts: set[str] = set()
        exact: set[str] = set()
        roles: set[tuple[str, str]] = set()
        for entry in entries:
            value = entry.value
            if entry.kind == "*" or (entry.kind == "AWS" and value == "*"):
                self.star = True
            elif entry.kind != "AWS":
                continue  # Service, Federated, CanonicalUser never name an execute-api caller
            elif len(value) == 12 and value.isascii() and value.isdigit():
                accounts.add(value)
            elif value.startswith("arn:"):
                pieces = value.split(":", 5)
                if len(pieces) != 6:
                    exact.add(value)
                    continue
                account, rest = pieces[4], pieces[5]
                if pieces[2] == "iam" and rest == "root":
                    accounts.add(account)
                elif pieces[2] == "iam" and rest.startswith("role/"):
                    roles.add((account, rest.rsplit("/", 1)[1]))
                    exact.add(value)
                else:
                    exact.add(value)
            else:
                exact.add(value)
        # most of the three are empty: one shared empty set (a thousand APIs' policies)
        self.accounts = frozenset(accounts) if accounts else _NONE
        self.exact = frozenset(exact) if exact else _NONE
        self.roles = frozenset(roles) if roles else _NONE

    def match(self, caller: Caller) -> MatchKind:
        """How a Principal element matches the caller."""
        if self.star:
            return MatchKind.FULL
        if caller.anonymous:
            return MatchKind.NONE
        if caller.arn in self.exact:
            return MatchKind.FULL
        if caller.kind in (CallerKind.SESSION, CallerKind.ROLE) and (
            (caller.account, caller.role_name) in self.roles
        ):
            return MatchKind.FULL
        if caller.account is not None and caller.account in self.accounts:
            return MatchKind.ACCOUNT
        return MatchKind.NONE

    def covers(self, caller: Caller) -> bool:
        """Whether the NotPrincipal element of a Deny excludes the caller.

        AWS checks the caller layer by layer: the account, then the user or the role, then the
        role session, and the caller is excluded only when every layer is named (the IAM
        NotPrincipal page: list the session, its role and the account together).
        """
        if self.star:
            return True
        if caller.anonymous:
            return False
        account_named = caller.account is not None and caller.account in self.accounts
        kind = caller.kind
        if kind == CallerKind.ACCOUNT:
            return account_named
        if kind in (CallerKind.USER, CallerKind.FEDERATED):
            return account_named and caller.arn in self.exact
        if kind == CallerKind.ROLE:
            return account_named and (caller.account, caller.role_name) in self.roles
        if kind == CallerKind.SESSION:
            return (
                account_named
                and (caller.account, caller.role_name) in self.roles
                and caller.arn in self.exact
            )
        return caller.arn in self.exact

    def touches(self, caller: Caller) -> bool:
        """Whether the NotPrincipal element of an Allow excludes the caller: when it names any
        layer of it (the caller, its role or its account), as a Principal would match it.

        AWS does not support Allow with NotPrincipal; read literally with the Deny rule, a
        caller listed without its account would be granted by the very statement that names
        it. Excluding on any layer keeps every listed principal out (fail closed).
        """
        return self.match(caller) is not MatchKind.NONE

    def named_layer(self, caller: Caller) -> str | None:
        """Which layer of the caller the element names, in words (for explanations)."""
        if self.star:
            return '"*"'
        if caller.anonymous:
            return None
        if caller.arn in self.exact:
            return "by its own ARN"
        if caller.kind in (CallerKind.SESSION, CallerKind.ROLE) and (
            (caller.account, caller.role_name) in self.roles
        ):
            return f"by its role {caller.role_name}"
        if caller.account is not None and caller.account in self.accounts:
            return f"by its account {caller.account}"
        return None


# --- actions and resources ----------------------------------------------------------------
class ActionMatcher:
    __slots__ = ("name", "service", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        if text == "*":
            self.service: str | None = None
            self.name: GlobMatcher | None = GlobMatcher(glob_from_text("*"))
            return
        service, _, name = text.partition(":")
        self.service = service.lower()
        # an empty or blank action name never matches
        self.name = GlobMatcher(glob_from_text(name.lower())) if name.strip() else None

    def match(self, action: str) -> bool:
        if self.service is None:
            return True
        if self.name is None:
            return False
        service, sep, name = action.partition(":")
        return bool(sep) and service.lower() == self.service and self.name.match(name.lower())


class ResourceEntry:
    """One Resource/NotResource value: a static ARN pattern or a template with variables."""

    __slots__ = ("matcher", "template", "text")

    def __init__(self, text: str, variables: bool) -> None:
        self.text = text
        template = _resource_template(text, variables)
        if has_vars(template):
            self.template: Template | None = template
            self.matcher: ArnMatcher | None = None
        else:
            self.template = None
            self.matcher = ArnMatcher(fold_service(template))  # type: ignore[arg-type]

    def match(self, resource: str, context: Context) -> bool:
        if self.matcher is not None:
            return self.matcher.match(resource)
        assert self.template is not None
        glob = resolve(self.template, context)
        if glob is None:
            return False  # an unresolvable variable: this entry matches nothing
        return ArnMatcher(fold_service(glob)).match(resource)

    def resolved(self, context: Context) -> str | None:
        if self.template is None:
            return self.text
        glob = resolve(self.template, context)
        return None if glob is None else template_text(glob)


def _resource_template(text: str, variables: bool) -> Template:
    """Variables are expanded only in the resource part, after the fifth colon."""
    if not variables or "${" not in text:
        return glob_from_text(text)
    pieces = text.split(":", 5)
    if len(pieces) < 6:
        return glob_from_text(text)  # no resource part: nothing is a variable
    head = ":".join(pieces[:5]) + ":"
    tail, _ = read_template(pieces[5], variables=True)
    return (*glob_from_text(head), *tail)


# --- statements -----------------------------------------------------------------------------
class CompiledStatement:
    __slots__ = (
        "actions",
        "atoms",
        "clauses",
        "effect",
        "not_action",
        "not_principal",
        "not_resource",
        "principals",
        "ref",
        "resources",
    )

    def __init__(self, st: Statement, policy: Policy, api: ApiRef | None) -> None:
        self.ref = StatementRef(st.index, st.sid)
        self.effect = st.effect
        self.principals = PrincipalSet(st.principals) if st.principals is not None else None
        self.not_principal = st.not_principal
        self.actions = tuple(ActionMatcher(a.value) for a in st.actions)
        self.not_action = st.not_action
        variables = policy.variables_enabled
        self.resources = tuple(ResourceEntry(expand_shorthand(r.value, api), variables) for r in st.resources)
        self.not_resource = st.not_resource
        atoms = []
        for clause in st.conditions:
            templates = tuple(
                read_template(v.value, variables=variables and clause.operator.variables)[0]
                for v in clause.values
            )
            atoms.append(Atom(clause.operator, clause.key, templates))
        self.atoms = tuple(atoms)
        self.clauses = st.conditions

    @property
    def is_deny(self) -> bool:
        return self.effect is Effect.DENY

    def principal_kind(self, caller: Caller, identity: bool) -> MatchKind:
        if identity:
            return MatchKind.FULL
        if self.principals is None:
            return MatchKind.NONE
        if self.not_principal:
            if self.effect is Effect.DENY:
                excluded = self.principals.covers(caller)
            else:
                excluded = self.principals.touches(caller)
            return MatchKind.NONE if excluded else MatchKind.FULL
        return self.principals.match(caller)

    def action_matches(self, action: str) -> bool:
        hit = any(a.match(action) for a in self.actions)
        return not hit if self.not_action else hit

    def conditions_hold(self, context: Context) -> bool:
        return all(a.evaluate(context) for a in self.atoms)

    # --- explanation ----------------------------------------------------------------------
    def explain_elements(
        self, caller: Caller, action: str, resource: str, context: Context, identity: bool
    ) -> tuple[MatchKind, list[ElementCheck]]:
        checks: list[ElementCheck] = []
        kind = self.principal_kind(caller, identity)
        who = "anonymous caller" if caller.anonymous else f"caller {caller.arn}"
        if not identity:
            name = "NotPrincipal" if self.not_principal else "Principal"
            if self.principals is None:
                detail = "the statement names no principal and applies to nobody"
            elif self.not_principal and kind is not MatchKind.NONE:
                detail = f"{who} is not excluded by NotPrincipal"
            elif self.not_principal and self.effect is Effect.DENY:
                detail = f"{who} is listed (with every layer of its identity), so excluded"
            elif self.not_principal:
                detail = (
                    f"{who} is listed ({self.principals.named_layer(caller)}), so excluded: "
                    "an Allow with NotPrincipal excludes a caller any layer of which is listed"
                )
            elif kind is MatchKind.FULL:
                detail = f"{who} is named" + (' ("*" covers everyone)' if self.principals.star else "")
            elif kind is MatchKind.ACCOUNT:
                detail = f"{who} matches only through its account {caller.account}"
            else:
                detail = f"{who} is not named"
            checks.append(ElementCheck(name, kind is not MatchKind.NONE, detail))
        hits = [a.text for a in self.actions if a.match(action)]
        name = "NotAction" if self.not_action else "Action"
        if self.not_action:
            checks.append(
                ElementCheck(
                    name,
                    not hits,
                    (f"{action} is excluded by {hits[0]}" if hits else f"{action} is not excluded"),
                )
            )
        else:
            checks.append(
                ElementCheck(
                    name,
                    bool(hits),
                    (
                        f"{action} matches {hits[0]}"
                        if hits
                        else f"{action} matches none of " + ", ".join(a.text for a in self.actions)
                    ),
                )
            )
        rhits = []
        notes = []
        for r in self.resources:
            resolved = r.resolved(context)
            if resolved is None:
                notes.append(f"{r.text} has a variable with no value")
            elif r.match(resource, context):
                rhits.append(resolved if resolved == r.text else f"{r.text} = {resolved}")
        name = "NotResource" if self.not_resource else "Resource"
        extra = ("; " + "; ".join(notes)) if notes else ""
        if self.not_resource:
            checks.append(
                ElementCheck(
                    name,
                    not rhits,
                    (f"{resource} is excluded by {rhits[0]}" if rhits else f"{resource} is not excluded")
                    + extra,
                )
            )
        else:
            checks.append(
                ElementCheck(
                    name,
                    bool(rhits),
                    (
                        f"{resource} matches {rhits[0]}"
                        if rhits
                        else f"{resource} matches none of " + ", ".join(r.text for r in self.resources)
                    )
                    + extra,
                )
            )
        return kind, checks

    def explain_conditions(self, context: Context) -> list[tuple[str, str, AtomTrace]]:
        return [(a.spec.name, a.written_key, a.trace(context)) for a in self.atoms]


def compile_statements(policy: Policy, api: ApiRef | None) -> tuple[CompiledStatement, ...]:
    return tuple(CompiledStatement(st, policy, api) for st in policy.statements)
