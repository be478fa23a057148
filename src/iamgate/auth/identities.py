"""The identity store: accounts, IAM users and roles, their access keys and role sessions.

What SigV4 resolves an access key to, and what fills the principal condition keys exactly as AWS
does for an ``AWS_IAM`` caller (docs/authentication.md): ``aws:PrincipalArn`` (a session's
is its role's ARN), ``aws:PrincipalAccount``, ``aws:PrincipalType``, ``aws:userid``,
``aws:username`` (users only), ``aws:PrincipalOrgID``, ``aws:PrincipalOrgPaths`` (multivalued),
``aws:PrincipalTag/<key>`` (session tags override the role's), ``aws:TokenIssueTime`` and
``aws:MultiFactorAuthPresent`` / ``aws:MultiFactorAuthAge`` for temporary credentials.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from iamgate.auth.sigv4 import Credential
from iamgate.policy import CompiledPolicy, Context, Decision, DecisionEffect, Request, StatementRef

__all__ = ["Account", "ConsoleUser", "Identity", "IdentityStore", "Principal", "identity_decision"]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    organization_id: str | None = None
    organization_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Principal:
    """An IAM user or role as configured."""

    arn: str
    kind: str  # "user" | "role" | "root"
    account: str
    name: str
    unique_id: str
    tags: dict[str, str] = field(default_factory=dict)
    policies: tuple[CompiledPolicy, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller behind one set of credentials: a user, the account root, or a role session."""

    principal: Principal
    caller_arn: str  # what policies and error messages see: the user ARN or the session ARN
    session_name: str | None = None
    session_tags: dict[str, str] = field(default_factory=dict)
    issued_at: float | None = None
    mfa_at: float | None = None
    account: Account | None = None

    @property
    def account_id(self) -> str:
        return self.principal.account

    @property
    def principal_type(self) -> str:
        if self.session_name is not None:
            return "AssumedRole"
        return {"user": "User", "root": "Account", "role": "AssumedRole"}[self.principal.kind]

    @property
    def principal_id(self) -> str:
        """``aws:userid``, and ``$context.identity.caller`` / ``.user`` on AWS: the user's unique
        id (``AIDA...``), ``ROLEID:session`` for a role session, the account id for the root."""
        p = self.principal
        if p.kind == "root":
            return p.account
        if p.kind == "role" and self.session_name:
            return f"{p.unique_id}:{self.session_name}"
        return p.unique_id

    def condition_keys(self, now: float) -> dict[str, str | tuple[str, ...]]:
        """The principal keys AWS fills for this caller (lower-case names)."""
        p = self.principal
        keys: dict[str, str | tuple[str, ...]] = {
            "aws:principalarn": p.arn,
            "aws:principalaccount": p.account,
            "aws:principaltype": self.principal_type,
        }
        keys["aws:userid"] = self.principal_id
        if p.kind == "user":
            keys["aws:username"] = p.name
        if self.account is not None:
            if self.account.organization_id:
                keys["aws:principalorgid"] = self.account.organization_id
            if self.account.organization_paths:
                keys["aws:principalorgpaths"] = self.account.organization_paths
        for name, value in {**p.tags, **self.session_tags}.items():
            keys[f"aws:principaltag/{name.lower()}"] = value
        if self.issued_at is not None:
            keys["aws:tokenissuetime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.issued_at))
            keys["aws:multifactorauthpresent"] = "true" if self.mfa_at is not None else "false"
        if self.mfa_at is not None:
            keys["aws:multifactorauthage"] = str(max(0, int(now - self.mfa_at)))
        return keys


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A person who signs in to the web console with a name and a password (docs/console.md),
    acting as ``identity``. ``password_hash`` is an argon2 PHC string, never the password."""

    name: str
    password_hash: str
    identity: Identity
    enabled: bool = True

    def __repr__(self) -> str:  # never print the hash
        return f"ConsoleUser(name={self.name!r}, identity={self.identity.caller_arn!r})"


def unique_id(prefix: str, arn: str) -> str:
    """A stable IAM-style unique id (AIDA.../AROA...) for a principal configured without one."""
    digest = hashlib.sha256(arn.encode()).hexdigest().upper()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    body = "".join(alphabet[int(digest[i : i + 2], 16) % 32] for i in range(0, 34, 2))
    return prefix + body[:17]


class IdentityStore:
    """Access key id -> (credential, identity); console user name -> console user."""

    def __init__(self, accounts: dict[str, Account] | None = None) -> None:
        self.accounts = accounts or {}
        self._keys: dict[str, tuple[Credential, bool]] = {}  # access key id -> (credential, enabled)
        self._console_users: dict[str, ConsoleUser] = {}

    def add_console_user(self, user: ConsoleUser) -> None:
        self._console_users[user.name] = user

    def console_user(self, name: str) -> ConsoleUser | None:
        """An enabled console user by name (a disabled one is as unknown as a missing one)."""
        found = self._console_users.get(name)
        return found if found is not None and found.enabled else None

    def has_console_user(self, name: str) -> bool:
        """Whether the name is taken (enabled or not)."""
        return name in self._console_users

    def add(self, credential: Credential, *, enabled: bool = True) -> None:
        self._keys[credential.access_key_id] = (credential, enabled)

    def lookup(self, access_key_id: str) -> Credential | None:
        """For the SigV4 verifier: disabled keys are as unknown as missing ones."""
        found = self._keys.get(access_key_id)
        if found is None or not found[1]:
            return None
        return found[0]

    def __len__(self) -> int:
        return len(self._keys)

    def policies(self) -> list[CompiledPolicy]:
        """The identity policies of every caller the store knows, each once: their memos share
        the gateway's memo budget with the resource policies'."""
        found: dict[int, CompiledPolicy] = {}
        owners = [credential.owner for credential, _ in self._keys.values()]
        owners += [user.identity for user in self._console_users.values()]
        for owner in owners:
            if isinstance(owner, Identity):
                for policy in owner.principal.policies:
                    found[id(policy)] = policy
        return list(found.values())


def identity_decision(
    identity: Identity, principal: str, action: str, resource: str, context: Mapping[str, object]
) -> Decision:
    """The caller's identity policies together (IAM's evaluation over all of them): any explicit deny
    wins, then any allow; with no policy at all, an implicit deny. The account root is allowed
    everything its account owns (it has no identity policies to consult). Each policy's decision
    is memoised as a resource policy's is (``CompiledPolicy.decide``: with a prepared context,
    and only for policies whose decision depends on nothing but the key); the memos take their
    share of the gateway's budget (:meth:`IdentityStore.policies`)."""
    if identity.principal.kind == "root":
        return Decision(DecisionEffect.ALLOW, (StatementRef(-1, "account-root"),))
    allows: list[StatementRef] = []
    prepared = context if type(context) is Context else None
    for policy in identity.principal.policies:
        if prepared is not None:
            decision = policy.decide(principal, action, resource, prepared)
        else:  # a plain mapping (the management API's callers): evaluated, not memoised
            decision = policy.evaluate(Request(principal, action, resource, context))
        if decision.effect is DecisionEffect.EXPLICIT_DENY:
            return decision
        if decision.effect is DecisionEffect.ALLOW:
            allows.extend(decision.determining)
    if allows:
        return Decision(DecisionEffect.ALLOW, tuple(allows))
    return Decision(DecisionEffect.IMPLICIT_DENY)
