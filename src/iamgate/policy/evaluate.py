"""Evaluate: the prepared, indexed form of a policy and its decision procedure.

Statements are bits of an integer. For one request the evaluator computes, without walking the
statements one by one:

* the statements whose Action matches (memoised per action),
* those whose Principal matches, and which of them fully rather than by account (memoised per
  caller),
* those whose Resource matches: exact ARNs and ``prefix*`` patterns are looked up in dictionaries
  (one lookup per distinct prefix length), only other shapes are tried one by one,
* those whose conditions hold: clauses are grouped by ``(operator, key)``; ``IpAddress`` groups
  are indexed by network (one lookup per distinct prefix length, whatever the number of CIDRs)
  and ``StringEquals`` groups by value; other clauses are evaluated only for statements still
  in the running.

The decision is then: any applicable Deny -> explicit deny; else any applicable Allow -> allow;
else implicit deny. ``explain=True`` walks every statement instead and records why each did or
did not apply. An unexpected exception is an engine fault: the decision is an explicit deny
that names the fault (fail closed).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Final

from .ast import Policy, PolicyKind
from .compile import ApiRef, CompiledStatement, compile_statements
from .conditions import Atom, Context
from .decision import Decision, DecisionEffect, MatchKind, StatementRef, StatementTrace
from .extension_keys import referenced_keys
from .memo import SecondSight
from .operators import Family
from .request import Caller, Request
from .request import Context as Normalised
from .values import read_ip, read_network
from .variables import has_vars

__all__ = ["CompiledPolicy"]

_MEMO_LIMIT: Final = 4096

# enum members read once: on CPython 3.11 reading one from its class costs a descriptor call
_ALLOW: Final = DecisionEffect.ALLOW
_EXPLICIT_DENY: Final = DecisionEffect.EXPLICIT_DENY
_IMPLICIT_DENY: Final = DecisionEffect.IMPLICIT_DENY
_NONE: Final = MatchKind.NONE
_ACCOUNT: Final = MatchKind.ACCOUNT
_FULL: Final = MatchKind.FULL


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


class _Group:
    """Clauses sharing one (operator, key). ``satisfied(context, mask)`` returns the subset of
    ``mask`` (statements of this group still in the running) whose clause holds."""

    __slots__ = ("mask",)

    def __init__(self) -> None:
        self.mask = 0

    def satisfied(self, context: Context, mask: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class _GenericGroup(_Group):
    __slots__ = ("atoms",)

    def __init__(self) -> None:
        super().__init__()
        self.atoms: list[tuple[int, Atom]] = []

    def add(self, bit: int, atom: Atom) -> None:
        self.atoms.append((bit, atom))
        self.mask |= bit

    def satisfied(self, context: Context, mask: int) -> int:
        out = mask
        for bit, atom in self.atoms:
            if bit & out and not atom.evaluate(context):
                out &= ~bit
        return out


class _IpGroup(_Group):
    """Plain ``IpAddress`` / ``NotIpAddress`` (optionally ``IfExists``) on one key.

    The statements whose listed networks contain an address depend on the address text alone,
    so they are memoised per text (bounded like the other memos): a gateway sees the same few
    client addresses over and over, and reading one costs far more than a dictionary lookup."""

    __slots__ = ("absent", "empty", "key", "memo", "negated", "tables")

    def __init__(self, key: str, negated: bool, if_exists: bool) -> None:
        super().__init__()
        self.key = key
        self.negated = negated
        self.absent = negated or if_exists  # result when the key is missing
        self.empty = 0  # statements whose clause lists no value: a negated one is vacuously true
        self.tables: dict[tuple[int, int], dict[int, int]] = {}
        # address text -> statements it is in; -1: unreadable
        self.memo: SecondSight[str, int] = SecondSight(_MEMO_LIMIT)

    def add(self, bit: int, atom: Atom) -> None:
        self.mask |= bit
        if not atom.values:
            self.empty |= bit
        for value in atom.values:
            net = value.network
            if net is None:  # pragma: no cover - validation rejects invalid networks
                net = read_network(value.text or "")
                if net is None:
                    continue
            shift = net.max_prefixlen - net.prefixlen
            table = self.tables.setdefault((net.version, shift), {})
            key = int(net.network_address) >> shift
            table[key] = table.get(key, 0) | bit

    def hits(self, text: str) -> int:
        """The statements (of the whole group) with a network containing the address ``text``;
        -1 when ``text`` is not an address. Memoised."""
        addr = read_ip(text)
        if addr is None:
            hit = -1
        else:
            version, number = addr
            hit = 0
            for (v, shift), table in self.tables.items():
                if v == version:
                    found = table.get(number >> shift)
                    if found:
                        hit |= found
        self.memo.keep(text, hit)
        return hit

    def satisfied(self, context: Context, mask: int) -> int:
        value = context.get(self.key)
        if value is None:
            return mask if self.absent else 0
        if type(value) is not str:
            return 0  # multivalued under a plain operator never matches
        hit = self.memo.found.get(value)
        if hit is None:
            hit = self.hits(value)
        if hit < 0:
            # an unreadable address matches no value, and is "not in" none of them either
            return mask & self.empty if self.negated else 0
        return mask & ~hit if self.negated else mask & hit


class _EqualsGroup(_Group):
    """``StringEquals`` family (optionally ``IgnoreCase``/``Not``/``IfExists``), no variables."""

    __slots__ = ("absent", "fold", "key", "negated", "table")

    def __init__(self, key: str, negated: bool, if_exists: bool, fold: bool) -> None:
        super().__init__()
        self.key = key
        self.negated = negated
        self.absent = negated or if_exists
        self.fold = fold
        self.table: dict[str, int] = {}

    def add(self, bit: int, atom: Atom) -> None:
        self.mask |= bit
        for value in atom.values:
            text = value.text or ""
            if self.fold:
                text = text.lower()
            self.table[text] = self.table.get(text, 0) | bit

    def satisfied(self, context: Context, mask: int) -> int:
        value = context.get(self.key)
        if value is None:
            return mask if self.absent else 0
        if type(value) is not str:
            return 0
        hit = self.table.get(value.lower() if self.fold else value, 0)
        return mask & ~hit if self.negated else mask & hit


class _ResourceIndex:
    """Statements whose Resource (or NotResource) entries match a resource ARN.

    ``prefix*`` entries are kept sorted, each with a link to the longest other entry that is a
    prefix of it and the statements of that whole chain: the prefixes of an ARN are then found
    with one binary search and (usually) one ``startswith``, whatever their number and lengths.
    Why it works: if ``p`` is the longest entry that is a prefix of ``r``, every entry sorting
    between ``p`` and ``r`` starts with ``p``, so ``p`` is on the chain of the last entry not
    after ``r``; and every shorter entry that is a prefix of ``r`` is a prefix of ``p``."""

    __slots__ = ("always", "chain", "dynamic", "exact", "general", "keys", "parent", "prefixes")

    def __init__(self) -> None:
        self.always = 0
        self.exact: dict[str, int] = {}
        self.prefixes: dict[int, dict[str, int]] = {}  # by length, as added
        self.general: list[tuple[int, Callable[[str], bool]]] = []
        self.dynamic: list[tuple[int, Callable[[str, Context], bool]]] = []
        self.keys: list[str] = []  # every prefix, sorted
        self.parent: list[int] = []  # index of the longest other key that is a prefix, or -1
        self.chain: list[int] = []  # statements of the key and of every key that is a prefix of it

    def add(self, bit: int, st: CompiledStatement) -> None:
        for entry in st.resources:
            matcher = entry.matcher
            if matcher is None:
                self.dynamic.append((bit, entry.match))
            elif matcher.exact is not None:
                self.exact[matcher.exact] = self.exact.get(matcher.exact, 0) | bit
            elif matcher.prefix == "":
                self.always |= bit
            elif matcher.prefix is not None:
                table = self.prefixes.setdefault(len(matcher.prefix), {})
                table[matcher.prefix] = table.get(matcher.prefix, 0) | bit
            else:
                self.general.append((bit, matcher.match))

    def freeze(self) -> None:
        """Build the sorted prefix index (after the last :meth:`add`)."""
        bits = {p: b for table in self.prefixes.values() for p, b in table.items()}
        keys = sorted(bits)
        parent: list[int] = []
        chain: list[int] = []
        for i, key in enumerate(keys):
            j = i - 1
            while j >= 0 and not key.startswith(keys[j]):
                j = parent[j]
            parent.append(j)
            chain.append(bits[key] | (chain[j] if j >= 0 else 0))
        self.keys, self.parent, self.chain = keys, parent, chain

    def lookup(self, resource: str, context: Context, wanted: int) -> int:
        hit = self.always | self.exact.get(resource, 0)
        keys = self.keys
        if keys:
            i = bisect_right(keys, resource) - 1
            while i >= 0:
                if resource.startswith(keys[i]):
                    hit |= self.chain[i]
                    break
                i = self.parent[i]
        for bit, match in self.general:
            if bit & wanted & ~hit and match(resource):
                hit |= bit
        for bit, dyn in self.dynamic:
            if bit & wanted & ~hit and dyn(resource, context):
                hit |= bit
        return hit


class CompiledPolicy:
    """A policy prepared for evaluation. Immutable after construction; thread-safe for reads
    (the memo dictionaries only ever gain complete entries)."""

    def __init__(self, policy: Policy, api: ApiRef | None = None) -> None:
        if any(st.broken for st in policy.statements):
            raise ValueError("a policy with errors cannot be compiled; use prepare() to get its diagnostics")
        self.policy = policy
        self.api = api
        self.identity = policy.kind is PolicyKind.IDENTITY
        self.statements = compile_statements(policy, api)
        # iamgate's own condition keys the policy reads (lower-cased), and those it reads as one
        # value: the gateway fills only these (docs/policy-semantics.md)
        self.extension_keys: tuple[str, ...]
        self.single_valued_keys: tuple[str, ...]
        self.extension_keys, self.single_valued_keys = referenced_keys(policy)
        self._refs = [st.ref for st in self.statements]
        self._deny = 0
        self._res = _ResourceIndex()
        self._notres = _ResourceIndex()
        self._notres_mask = 0
        self._cond_mask = 0
        groups: dict[tuple[str, str], _Group] = {}
        generic: list[_GenericGroup] = []
        for i, st in enumerate(self.statements):
            bit = 1 << i
            if st.is_deny:
                self._deny |= bit
            if st.not_resource:
                self._notres.add(bit, st)
                self._notres_mask |= bit
            else:
                self._res.add(bit, st)
            for atom in st.atoms:
                self._cond_mask |= bit
                key = (atom.spec.name, atom.key)
                group = groups.get(key)
                if group is None:
                    group = _make_group(atom)
                    groups[key] = group
                if group.mask & bit or not _fits(group, atom):
                    fallback = _GenericGroup()
                    fallback.add(bit, atom)
                    generic.append(fallback)
                else:
                    group.add(bit, atom)  # type: ignore[attr-defined]
        self._res.freeze()
        self._notres.freeze()
        indexed = [g for g in groups.values() if not isinstance(g, _GenericGroup)]
        others = [g for g in groups.values() if isinstance(g, _GenericGroup)]
        self._groups: tuple[_Group, ...] = tuple(g for g in (*indexed, *others, *generic) if g.mask)
        # The condition keys a decision depends on, when it depends on nothing else of the context:
        # no Resource with variables, only IpAddress/StringEquals groups (indexed, no variables).
        # Then decide() memoises whole decisions; otherwise it just evaluates.
        self._memo_keys: tuple[str, ...] | None = None
        if not self._res.dynamic and not self._notres.dynamic and not others and not generic:
            self._memo_keys = tuple(sorted({g.key for g in indexed}))  # type: ignore[attr-defined]
        self._decided: SecondSight[tuple[object, ...], Decision] = SecondSight(_MEMO_LIMIT)
        self._action_memo: SecondSight[str, int] = SecondSight(_MEMO_LIMIT)
        self._principal_memo: SecondSight[str | None, tuple[int, int]] = SecondSight(_MEMO_LIMIT)
        # decisions by statement mask: denials by the deny mask, allows by mask * 2 + (1 for a
        # full principal match, 0 for an account match); plain int keys hash fast
        self._denials: SecondSight[int, Decision] = SecondSight(_MEMO_LIMIT)
        self._allows: SecondSight[int, Decision] = SecondSight(_MEMO_LIMIT)
        self._implicit = Decision(_IMPLICIT_DENY)

    # --- memoised dimensions --------------------------------------------------------------
    def _actions(self, action: str) -> int:
        mask = 0
        for i, st in enumerate(self.statements):
            if st.action_matches(action):
                mask |= 1 << i
        self._action_memo.keep(action, mask)
        return mask

    def _principals(self, principal: str | None, caller: Caller) -> tuple[int, int]:
        applies = full = 0
        for i, st in enumerate(self.statements):
            kind = st.principal_kind(caller, self.identity)
            if kind is not MatchKind.NONE:
                applies |= 1 << i
                if kind is MatchKind.FULL:
                    full |= 1 << i
        self._principal_memo.keep(principal, (applies, full))
        return applies, full

    def _decision(
        self, memo: SecondSight[int, Decision], key: int, effect: DecisionEffect, mask: int
    ) -> Decision:
        refs = tuple(self._refs[i] for i in _bits(mask))
        if effect is _EXPLICIT_DENY:
            found = Decision(effect, refs, _NONE)
        else:
            found = Decision(effect, refs, _FULL if key & 1 else _ACCOUNT)
        memo.keep(key, found)
        return found

    def limit_memos(self, limit: int) -> None:
        """Bound the memos that grow with the requests' variety (whole decisions, by caller,
        resource and condition values; client addresses) to ``limit`` entries each. A gateway
        holding many policies gives each a share of one budget, so that a client spraying
        distinct paths over a thousand APIs fills a bounded amount of memory, not a thousand
        full memos."""
        self._decided.limit = limit
        for group in self._groups:
            if isinstance(group, _IpGroup):
                group.memo.limit = limit

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, request: Request, *, explain: bool = False) -> Decision:
        try:
            if explain:
                return self._walk(request)
            return self._fast(request)
        except Exception as exc:
            return Decision(
                DecisionEffect.EXPLICIT_DENY,
                (),
                MatchKind.NONE,
                ((StatementRef(-1, None), f"engine fault: {type(exc).__name__}: {exc}"),),
            )

    def decide(self, principal: str | None, action: str, resource: str, context: Normalised) -> Decision:
        """``evaluate(Request(principal, action, resource, context))`` for a hot path, with the
        whole decision memoised when the policy allows it: the key is the principal, action,
        resource and the values of every condition key the policy reads, so equal keys are the
        same question. ``context`` must be a :class:`Context` (normalised keys); anything else is
        just evaluated."""
        keys = self._memo_keys
        if keys is None or type(context) is not Normalised:
            return self.evaluate(Request(principal, action, resource, context))
        if len(keys) == 1:
            key: tuple[object, ...] = (principal, action, resource, context.get(keys[0]))
        else:
            key = (principal, action, resource, *[context.get(k) for k in keys])
        try:
            found = self._decided.found.get(key)
        except TypeError:  # a value that cannot be a key (not str or tuple of str): no memo
            return self.evaluate(Request(principal, action, resource, context))
        if found is not None:
            return found
        found = self.evaluate(Request(principal, action, resource, context))
        if not found.errors:  # an engine fault is never kept
            self._decided.offer(key, found)
        return found

    def is_allowed(self, request: Request) -> bool:
        return self.evaluate(request).effect is _ALLOW

    def _fast(self, request: Request) -> Decision:
        cand = self._action_memo.found.get(request.action)
        if cand is None:
            cand = self._actions(request.action)
        pm = self._principal_memo.found.get(request.principal)
        if pm is None:
            pm = self._principals(request.principal, request.caller)
        cand &= pm[0]
        if not cand:
            return self._implicit
        context = request.context
        resource = request.resource
        notres = self._notres_mask & cand
        hit = self._res.lookup(resource, context, cand & ~notres)
        if notres:
            hit |= notres & ~self._notres.lookup(resource, context, notres)
        cand &= hit
        if not cand:
            return self._implicit
        if cand & self._cond_mask:
            for group in self._groups:
                gm = group.mask & cand
                if gm:
                    cand &= ~gm | group.satisfied(context, gm)
                    if not cand:
                        return self._implicit
        deny = cand & self._deny
        if deny:
            found = self._denials.found.get(deny)
            return found if found is not None else self._decision(self._denials, deny, _EXPLICIT_DENY, deny)
        key = cand << 1 | 1 if cand & pm[1] else cand << 1
        found = self._allows.found.get(key)
        return found if found is not None else self._decision(self._allows, key, _ALLOW, cand)

    def _walk(self, request: Request) -> Decision:
        traces: list[StatementTrace] = []
        deny: list[StatementRef] = []
        allow: list[tuple[StatementRef, MatchKind]] = []
        errors: list[tuple[StatementRef, str]] = []
        for st in self.statements:
            try:
                kind, checks = st.explain_elements(
                    request.caller, request.action, request.resource, request.context, self.identity
                )
                conds = st.explain_conditions(request.context) if all(c.matched for c in checks) else []
                applies = all(c.matched for c in checks) and all(t.result for _, _, t in conds)
                error = None
            except Exception as exc:
                kind, checks, conds, error = MatchKind.NONE, [], [], f"{type(exc).__name__}: {exc}"
                errors.append((st.ref, error))
                applies = st.is_deny  # an erroring Deny counts as applicable; an Allow does not
            traces.append(
                StatementTrace(st.ref, st.effect.value, applies, kind, tuple(checks), tuple(conds), error)
            )
            if applies:
                if st.is_deny:
                    deny.append(st.ref)
                else:
                    allow.append((st.ref, kind))
        if deny:
            return Decision(
                DecisionEffect.EXPLICIT_DENY,
                tuple(deny),
                MatchKind.NONE,
                tuple(errors),
                tuple(traces),
            )
        if allow:
            kind = MatchKind.FULL if any(k is MatchKind.FULL for _, k in allow) else MatchKind.ACCOUNT
            return Decision(
                DecisionEffect.ALLOW, tuple(r for r, _ in allow), kind, tuple(errors), tuple(traces)
            )
        return Decision(DecisionEffect.IMPLICIT_DENY, (), MatchKind.NONE, tuple(errors), tuple(traces))


def _make_group(atom: Atom) -> _Group:
    spec = atom.spec
    if spec.set_op is None and spec.family is Family.IP:
        return _IpGroup(atom.key, spec.negated, spec.if_exists)
    if (
        spec.set_op is None
        and spec.family is Family.STRING
        and spec.positive in ("StringEquals", "StringEqualsIgnoreCase")
    ):
        return _EqualsGroup(atom.key, spec.negated, spec.if_exists, spec.positive == "StringEqualsIgnoreCase")
    return _GenericGroup()


def _fits(group: _Group, atom: Atom) -> bool:
    """Indexed groups take only clauses without per-request values (variables)."""
    if isinstance(group, _EqualsGroup):
        return not any(has_vars(v.template) for v in atom.values)
    return True
