"""The reference evaluator: the test oracle for ``evaluate``.

Written to be obviously right rather than fast: it reads the AST directly, walks every
statement, and shares no helper with the fast path (its own wildcard matcher, variable
substitution, value parsing and caller model), so that a bug in one is unlikely to be
repeated in the other. The differential tests compare the two on generated policies.
It follows docs/policy-semantics.md section by section; the sections are named in the comments.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .ast import Effect, Policy, PolicyKind, Statement
from .decision import Decision, DecisionEffect, MatchKind, StatementRef
from .request import Request

__all__ = ["evaluate"]

# A pattern is a list of tokens: ("c", char) literal character, ("*",) or ("?",) wildcard.
Token = tuple[str, ...]


def _tokens_plain(text: str) -> list[Token]:
    out: list[Token] = []
    for ch in text:
        out.append((ch,) if ch in "*?" else ("c", ch))
    return out


def _tokens_with_variables(text: str, ctx: Mapping[str, object]) -> list[Token] | None:
    """Spec 7: substitute ${...}; substituted text is literal. None = unresolvable."""
    out: list[Token] = []
    i = 0
    while i < len(text):
        if text.startswith("${", i):
            close = text.find("}", i)
            if close != -1:
                body = text[i + 2 : close]
                if body in ("*", "?", "$"):
                    out.append(("c", body))
                    i = close + 1
                    continue
                m = re.fullmatch(r"\s*([^,}'\s][^,}']*?)\s*(?:,\s*'([^']*)'\s*)?", body)
                if m:
                    value = _get(ctx, m.group(1))
                    if not isinstance(value, str):
                        value = m.group(2)
                    if value is None:
                        return None
                    out.extend(("c", ch) for ch in value)
                    i = close + 1
                    continue
        ch = text[i]
        out.append((ch,) if ch in "*?" else ("c", ch))
        i += 1
    return out


def _get(ctx: Mapping[str, object], key: str) -> object:
    for k, v in ctx.items():
        if k.lower() == key.lower():
            return v
    return None


def _glob(tokens: list[Token], s: str, *, stop_at_colon: bool = False) -> bool:
    """Dynamic programming over (pattern position, text position)."""
    n, m = len(tokens), len(s)
    # can[i][j]: tokens[i:] matches s[j:]
    can = [[False] * (m + 1) for _ in range(n + 1)]
    can[n][m] = True
    for i in range(n - 1, -1, -1):
        tok = tokens[i]
        for j in range(m, -1, -1):
            if tok == ("*",):
                ok = can[i + 1][j]
                if not ok and j < m and not (stop_at_colon and s[j] == ":"):
                    ok = can[i][j + 1]
                can[i][j] = ok
            elif tok == ("?",):
                can[i][j] = j < m and not (stop_at_colon and s[j] == ":") and can[i + 1][j + 1]
            else:
                can[i][j] = j < m and s[j] == tok[1] and can[i + 1][j + 1]
    return can[0][0]


def _split_tokens(tokens: list[Token], limit: int) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    for tok in tokens:
        if tok == ("c", ":") and len(parts) <= limit:
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def _arn_match(tokens: list[Token], arn: str, *, fold_service: bool) -> bool:
    """Spec 4.3 reference matcher."""
    parts = _split_tokens(tokens, 5)
    if fold_service and len(parts) > 2:
        parts[2] = [("c", t[1].lower()) if t[0] == "c" else t for t in parts[2]]
    if len(parts) < 6 and parts[-1] and parts[-1][-1] == ("*",):
        # a short pattern whose last part ends in '*': that part absorbs the rest of the ARN
        pieces = arn.split(":", len(parts) - 1)
        if len(pieces) < len(parts):
            return False
    else:
        pieces = arn.split(":", 5)
        if len(pieces) != len(parts):
            return False
    if fold_service and len(pieces) > 2 and (len(parts) > 3 or len(parts) == 6):
        pieces[2] = pieces[2].lower()
    last = len(parts) - 1
    for k, (part, piece) in enumerate(zip(parts, pieces, strict=True)):
        if not _glob(part, piece, stop_at_colon=k < 5 and k != last):
            return False
    return True


# --- principals -------------------------------------------------------------------------
def _caller_layers(arn: str | None) -> dict[str, str | None]:
    """kind, account, role, arn of a caller ARN."""
    if arn is None:
        return {"kind": "anonymous", "account": None, "role": None, "arn": None}
    if re.fullmatch(r"[0-9]{12}", arn):
        return {"kind": "root", "account": arn, "role": None, "arn": arn}
    m = re.fullmatch(r"arn:[^:]+:(iam|sts)::([0-9]{12}):(.+)", arn, re.S)
    if not m:
        return {"kind": "other", "account": None, "role": None, "arn": arn}
    service, account, rest = m.groups()
    if service == "iam" and rest == "root":
        return {"kind": "root", "account": account, "role": None, "arn": arn}
    if service == "iam" and rest.startswith("user/") and len(rest) > 5:
        return {"kind": "user", "account": account, "role": None, "arn": arn}
    if service == "iam" and rest.startswith("role/") and len(rest) > 5:
        return {"kind": "role", "account": account, "role": rest.split("/")[-1], "arn": arn}
    if service == "sts" and rest.startswith("assumed-role/"):
        bits = rest.split("/")
        if len(bits) >= 3 and bits[1] and bits[-1]:
            return {"kind": "session", "account": account, "role": bits[1], "arn": arn}
    if service == "sts" and rest.startswith("federated-user/") and len(rest) > 15:
        return {"kind": "federated", "account": account, "role": None, "arn": arn}
    return {"kind": "other", "account": account, "role": None, "arn": arn}


def _entry_names(value: str) -> tuple[str, str | None, str | None]:
    """('star'|'account'|'role'|'arn', account, role-name) for an AWS principal value."""
    if value == "*":
        return "star", None, None
    if re.fullmatch(r"[0-9]{12}", value):
        return "account", value, None
    bits = value.split(":", 5)
    if len(bits) == 6 and bits[0] == "arn" and bits[2] == "iam" and bits[5] == "root":
        return "account", bits[4], None
    if len(bits) == 6 and bits[0] == "arn" and bits[2] == "iam" and bits[5].startswith("role/"):
        return "role", bits[4], bits[5].split("/")[-1]
    return "arn", None, None


def _principal_kind(st: Statement, caller: dict[str, str | None]) -> MatchKind:
    """Spec 2.2 and 2.3."""
    assert st.principals is not None
    entries = [(e.kind, e.value) for e in st.principals]
    if not st.not_principal:
        best = MatchKind.NONE
        for kind, value in entries:
            if kind == "*" or (kind == "AWS" and value == "*"):
                return MatchKind.FULL
            if kind != "AWS" or caller["kind"] == "anonymous":
                continue
            what, account, role = _entry_names(value)
            if what == "account" and account == caller["account"]:
                best = MatchKind.ACCOUNT
            elif (
                what == "role"
                and caller["kind"] in ("session", "role")
                and (account == caller["account"] and role == caller["role"])
            ) or value == caller["arn"]:
                return MatchKind.FULL
        return best
    # NotPrincipal: a Deny excludes the caller only when every layer of it is listed; an Allow
    # (which AWS does not support) excludes it when any layer is listed, so that it never
    # grants a principal it names
    named = {"account": False, "self": False, "role": False, "star": False}
    for kind, value in entries:
        if kind == "*" or (kind == "AWS" and value == "*"):
            named["star"] = True
        if kind != "AWS" or caller["kind"] == "anonymous":
            continue
        what, account, role = _entry_names(value)
        if what == "account" and account == caller["account"] and caller["account"] is not None:
            named["account"] = True
        if what == "role" and account == caller["account"] and role == caller["role"]:
            named["role"] = True
        if value == caller["arn"]:
            named["self"] = True
    if named["star"]:
        excluded = True
    elif st.effect is Effect.ALLOW:
        excluded = named["account"] or named["role"] or named["self"]
    elif caller["kind"] == "anonymous":
        excluded = False
    elif caller["kind"] == "root":
        excluded = named["account"]
    elif caller["kind"] in ("user", "federated"):
        excluded = named["account"] and named["self"]
    elif caller["kind"] == "role":
        excluded = named["account"] and named["role"]
    elif caller["kind"] == "session":
        excluded = named["account"] and named["role"] and named["self"]
    else:
        excluded = named["self"]
    return MatchKind.NONE if excluded else MatchKind.FULL


# --- actions and resources -----------------------------------------------------------------
def _action_matches(pattern: str, action: str) -> bool:
    if pattern == "*":
        return True
    p_service, _, p_name = pattern.partition(":")
    a_service, sep, a_name = action.partition(":")
    if not sep or p_service.lower() != a_service.lower() or not p_name.strip():
        return False
    return _glob(_tokens_plain(p_name.lower()), a_name.lower())


def _expand(resource: str, policy_api: tuple[str, str, str] | None) -> str:
    if policy_api and resource.startswith("execute-api:/"):
        region, account, api_id = policy_api
        partition = (
            "aws-cn"
            if region.startswith("cn-")
            else "aws-us-gov"
            if region.startswith("us-gov-")
            else ("aws-eusc" if region.startswith("eusc-") else "aws")
        )
        return f"arn:{partition}:execute-api:{region}:{account}:{api_id}" + resource[len("execute-api:") :]
    return resource


def _resource_matches(pattern: str, resource: str, ctx: Mapping[str, object], variables: bool) -> bool:
    bits = pattern.split(":", 5)
    if variables and len(bits) == 6:
        tail = _tokens_with_variables(bits[5], ctx)
        if tail is None:
            return False  # an unresolvable variable: this entry matches nothing
        tokens = _tokens_plain(":".join(bits[:5]) + ":") + tail
    else:
        tokens = _tokens_plain(pattern)
    return _arn_match(tokens, resource, fold_service=True)


# --- conditions --------------------------------------------------------------------------
NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
}
POSITIVE_OF = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
VARIABLE_OPERATORS = {
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
    "Bool",
}


def _number(text: str) -> Decimal | None:
    if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", text) or len(text) > 100:
        return None
    value = Decimal(text)
    if abs(value.adjusted()) > 1000:
        return None
    return value


def _date(text: str) -> Decimal | None:
    if re.fullmatch(r"-?[0-9]{1,15}(\.[0-9]{1,9})?", text):
        whole, _, frac = text.partition(".")
        micro = Decimal((frac + "000000")[:6]) if frac else Decimal(0)
        sign = -1 if whole.startswith("-") else 1
        return Decimal(int(whole)) + sign * micro / Decimal(1_000_000)
    m = re.fullmatch(
        r"([0-9]{4})-([0-9]{2})(?:-([0-9]{2}))?(?:[Tt]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
        text,
    )
    if not m:
        return None
    y, mo, d, h, mi, s, f, tz = m.groups()
    if tz and h is None:
        return None
    try:
        when = datetime(int(y), int(mo), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz not in ("Z", "z"):
        hh, mm = int(tz[1:3]), int(tz[-2:])
        if hh > 23 or mm > 59:
            return None
        offset = timedelta(hours=hh, minutes=mm)
        when = when - offset if tz[0] == "+" else when + offset
    seconds = Decimal(int(when.timestamp()))
    if f:
        seconds += Decimal("0." + (f + "000000")[:6])
    return seconds


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.split("%", maxsplit=1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped and net.prefixlen >= 96:
        return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}", strict=False)
    return net


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _pair(
    base: str, request_value: str, policy_value: str, ctx: Mapping[str, object], variables: bool
) -> bool | None:
    """One request value against one policy value for a positive base operator."""
    substitute = variables and base in VARIABLE_OPERATORS
    if base in ("StringEquals", "StringEqualsIgnoreCase", "Bool"):
        tokens = _tokens_with_variables(policy_value, ctx) if substitute else _tokens_plain(policy_value)
        if tokens is None:
            return False
        text = "".join(t[1] if t[0] == "c" else t[0] for t in tokens)
        if base == "StringEquals":
            return request_value == text
        if base == "StringEqualsIgnoreCase":
            return request_value.lower() == text.lower()
        if request_value.lower() not in ("true", "false") or text.lower() not in ("true", "false"):
            return None
        return request_value.lower() == text.lower()
    if base == "StringLike":
        tokens = _tokens_with_variables(policy_value, ctx) if substitute else _tokens_plain(policy_value)
        return False if tokens is None else _glob(tokens, request_value)
    if base.startswith(("Numeric", "Date")):
        read = _number if base.startswith("Numeric") else _date
        a, b = read(request_value), read(policy_value)
        if a is None or b is None:
            return None
        how = base.removeprefix("Numeric").removeprefix("Date")
        return {
            "Equals": a == b,
            "LessThan": a < b,
            "LessThanEquals": a <= b,
            "GreaterThan": a > b,
            "GreaterThanEquals": a >= b,
        }[how]
    if base == "BinaryEquals":
        a_bytes, b_bytes = _b64(request_value), _b64(policy_value)
        if a_bytes is None or b_bytes is None:
            return None
        return a_bytes == b_bytes
    if base == "IpAddress":
        addr, net = _ip(request_value), _net(policy_value)
        if addr is None or net is None:
            return None
        return addr.version == net.version and addr in net
    if base in ("ArnEquals", "ArnLike"):
        if len(request_value.split(":")) < 6:
            return None
        tokens = _tokens_with_variables(policy_value, ctx) if substitute else _tokens_plain(policy_value)
        if tokens is None:
            return False
        return _arn_match(tokens, request_value, fold_service=False)
    raise AssertionError(base)  # pragma: no cover


def _condition(op_name: str, key: str, values: list[str], ctx: Mapping[str, object], variables: bool) -> bool:
    """Spec 11 pseudocode, directly."""
    setop = None
    name = op_name
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if name.startswith(prefix):
            setop, name = prefix[:-1], name[len(prefix) :]
    if_exists = name.endswith("IfExists") and name != "Null"
    base = name[: -len("IfExists")] if if_exists else name
    present = _get(ctx, key) is not None
    if not present and if_exists:
        return True
    if base == "Null":
        raw = _get(ctx, key)
        is_absent = raw is None or raw in ((), [])
        want = "true" if is_absent else "false"
        return any(v.lower() == want for v in values)
    raw = _get(ctx, key)
    req: list[str] = [] if raw is None else (list(raw) if isinstance(raw, list | tuple) else [str(raw)])
    if setop == "ForAnyValue":
        return any(_single(base, r, values, ctx, variables) for r in req)
    if setop == "ForAllValues":
        return all(_single(base, r, values, ctx, variables) for r in req)
    if not present:
        return base in NEGATED
    if isinstance(raw, list | tuple):
        return False
    return _single(base, req[0], values, ctx, variables)


def _single(
    base: str, request_value: str, values: list[str], ctx: Mapping[str, object], variables: bool
) -> bool:
    negated = base in NEGATED
    positive = POSITIVE_OF.get(base, base)
    hits = [_pair(positive, request_value, v, ctx, variables) for v in values]
    if negated:
        return all(h is False for h in hits)
    return any(h is True for h in hits)


# --- decision ----------------------------------------------------------------------------
def evaluate(policy: Policy, request: Request, api: tuple[str, str, str] | None = None) -> Decision:
    """Decide ``request`` against ``policy``; ``api`` = (region, account, api id) for shorthand."""
    caller = _caller_layers(request.principal)
    variables = policy.version == "2012-10-17"
    ctx = request.context
    deny: list[StatementRef] = []
    allow: list[tuple[StatementRef, MatchKind]] = []
    for st in policy.statements:
        if policy.kind is PolicyKind.IDENTITY:
            kind = MatchKind.FULL
        elif st.principals is None:
            continue  # no Principal (a validation error) -> the statement is skipped
        else:
            kind = _principal_kind(st, caller)
        if kind is MatchKind.NONE:
            continue
        action_hit = any(_action_matches(a.value, request.action) for a in st.actions)
        if action_hit == st.not_action:
            continue
        resource_hit = any(
            _resource_matches(_expand(r.value, api), request.resource, ctx, variables) for r in st.resources
        )
        if resource_hit == st.not_resource:
            continue
        if not all(
            _condition(c.operator.name, c.key, [v.value for v in c.values], ctx, variables)
            for c in st.conditions
        ):
            continue
        ref = StatementRef(st.index, st.sid)
        if st.effect is Effect.DENY:
            deny.append(ref)
        else:
            allow.append((ref, kind))
    if deny:
        return Decision(DecisionEffect.EXPLICIT_DENY, tuple(deny), MatchKind.NONE)
    if allow:
        best = MatchKind.FULL if any(k is MatchKind.FULL for _, k in allow) else MatchKind.ACCOUNT
        return Decision(DecisionEffect.ALLOW, tuple(r for r, _ in allow), best)
    return Decision(DecisionEffect.IMPLICIT_DENY)
