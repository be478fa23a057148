"""Parse: the JSON tree of a policy document into the AST, reporting every shape problem.

Checks the policy grammar: the top level (Version, Id, Statement), statement
members and their types, the forbidden pairs (Action+NotAction, ...), Effect and Version values,
Principal shapes and condition operator names. Problems in one statement never hide problems in
another: a broken statement is left out of the AST and reported, and parsing goes on.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._json import JsonNode, LineIndex
from .ast import ConditionClause, Effect, Policy, PolicyKind, PrincipalEntry, Statement, Text
from .diagnostics import Diagnostic, Severity, did_you_mean
from .operators import parse_operator

__all__ = ["STATEMENT_KEYS", "TOP_KEYS", "VERSIONS", "parse"]

VERSIONS = ("2012-10-17", "2008-10-17")
TOP_KEYS = ("Version", "Id", "Statement")
STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")

_KIND_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "number": "a number",
    "bool": "a boolean",
    "null": "null",
}


class _Parser:
    def __init__(self, lines: LineIndex, kind: PolicyKind) -> None:
        self.lines = lines
        self.kind = kind
        self.diags: list[Diagnostic] = []
        self.hints_left = 200  # did-you-mean costs a string comparison per choice: bounded per document

    def report(
        self,
        code: str,
        node_or_ptr: JsonNode | str,
        message: str,
        help: str | None = None,
        *,
        offset: int | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        if isinstance(node_or_ptr, JsonNode):
            pointer, off = node_or_ptr.pointer, node_or_ptr.offset
        else:
            pointer, off = node_or_ptr, -1
        if offset is not None:
            off = offset
        self.diags.append(
            Diagnostic(f"policy.parse.{code}", severity, message, self.lines.location(pointer, off), help)
        )

    def loc(self, node: JsonNode) -> object:
        return self.lines.location(node.pointer, node.offset)

    def hint(self, value: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
        if self.hints_left <= 0:
            return None
        self.hints_left -= 1
        return did_you_mean(value, choices, cutoff=cutoff)

    def wrong_type(self, node: JsonNode, what: str, expected: str) -> None:
        self.report(
            "wrong-type",
            node,
            f"{what} must be {expected}, not {_KIND_NAMES[node.kind]}",
        )

    def members(
        self, node: JsonNode, allowed: tuple[str, ...], where: str
    ) -> dict[str, tuple[int, JsonNode]]:
        out: dict[str, tuple[int, JsonNode]] = {}
        for key, key_offset, child in node.members():
            if key not in allowed:
                hint = self.hint(key, allowed)
                choices = "valid members: " + ", ".join(allowed)
                self.report(
                    "unknown-element",
                    child,
                    f"unknown {where} element '{key}'",
                    f"{hint} {choices}" if hint else choices,
                    offset=key_offset,
                )
                continue
            out[key] = (key_offset, child)
        return out

    # --- scalars -----------------------------------------------------------------------
    def scalar_text(self, node: JsonNode, what: str, *, allow_scalars: bool) -> Text | None:
        """A string; with ``allow_scalars`` numbers and booleans become their text (IAM grammar)."""
        loc = self.lines.location(node.pointer, node.offset)
        if node.kind == "string":
            return Text(str(node.value), loc)
        if allow_scalars and node.kind == "number":
            return Text(str(node.value), loc)
        if allow_scalars and node.kind == "bool":
            return Text("true" if node.value else "false", loc)
        if node.kind == "null":
            self.report("null-value", node, f"{what} is null; a value is required")
            return None
        expected = "a string, number or boolean" if allow_scalars else "a string"
        self.wrong_type(node, what, expected)
        return None

    def string_list(
        self, node: JsonNode, what: str, *, allow_scalars: bool = False, allow_empty: bool = False
    ) -> tuple[Text, ...] | None:
        """A string or an array of strings (a bare scalar is a one-element array)."""
        if node.kind == "array":
            items = node.items()
            if not items and not allow_empty:
                self.report("empty-array", node, f"{what} is an empty array; give at least one value")
                return None
            out: list[Text] = []
            ok = True
            for item in items:
                text = self.scalar_text(item, f"a value of {what}", allow_scalars=allow_scalars)
                if text is None:
                    ok = False
                else:
                    out.append(text)
            return tuple(out) if ok else None
        text = self.scalar_text(node, what, allow_scalars=allow_scalars)
        return None if text is None else (text,)

    # --- document ------------------------------------------------------------------------
    def document(self, root: JsonNode) -> Policy | None:
        if root.kind != "object":
            self.wrong_type(root, "a policy document", "a JSON object")
            return None
        top = self.members(root, TOP_KEYS, "top-level")
        known = {k for k, _, _ in root.members()}
        version: str | None = None
        if "Version" in top:
            node = top["Version"][1]
            if node.kind != "string":
                self.wrong_type(node, "Version", "a string")
            elif node.value not in VERSIONS:
                self.report(
                    "invalid-version",
                    node,
                    f"unknown policy language Version '{node.value}'",
                    'use "2012-10-17" (the current version; policy variables need it) or "2008-10-17"',
                )
            else:
                version = str(node.value)
        policy_id: str | None = None
        if "Id" in top:
            node = top["Id"][1]
            if node.kind != "string":
                self.wrong_type(node, "Id", "a string")
            else:
                policy_id = str(node.value)
        if "Statement" not in top:
            hint = self.hint("Statement", known - set(TOP_KEYS), cutoff=0.7)
            self.report(
                "missing-element",
                root,
                "the policy has no Statement element",
                hint or 'add "Statement": [ {...} ] with at least one statement',
            )
            return None
        node = top["Statement"][1]
        if node.kind == "object":
            raw = [node]
        elif node.kind == "array":
            raw = list(node.items())
            if not raw:
                self.report("empty-array", node, "Statement is an empty array; a policy needs a statement")
        else:
            self.wrong_type(node, "Statement", "an object or an array of objects")
            return None
        statements = []
        for index, child in enumerate(raw):
            st = self.statement(child, index)
            if st is not None:
                statements.append(st)
        return Policy(version, policy_id, tuple(statements), self.kind)

    def statement(self, node: JsonNode, index: int) -> Statement | None:
        if node.kind != "object":
            self.wrong_type(node, f"statement {index}", "an object")
            return None
        before = len(self.diags)
        m = self.members(node, STATEMENT_KEYS, "statement")
        sid: str | None = None
        if "Sid" in m:
            child = m["Sid"][1]
            if child.kind != "string":
                self.wrong_type(child, "Sid", "a string")
            else:
                sid = str(child.value)
        effect: Effect | None = None
        if "Effect" not in m:
            self.report(
                "missing-element",
                node,
                f"statement {index} has no Effect",
                'add "Effect": "Allow" or "Effect": "Deny"',
            )
        else:
            child = m["Effect"][1]
            if child.kind != "string":
                self.wrong_type(child, "Effect", "a string")
            elif child.value in ("Allow", "Deny"):
                effect = Effect(child.value)
            else:
                hint = self.hint(str(child.value), ("Allow", "Deny"), cutoff=0.0)
                self.report(
                    "invalid-effect",
                    child,
                    f"Effect '{child.value}' is not valid; it must be exactly 'Allow' or 'Deny' "
                    "(case-sensitive)",
                    hint,
                )
        principals, not_principal = self.principal_pair(node, m, index)
        actions, not_action = self.pair(node, m, "Action", "NotAction", index)
        resources, not_resource = self.pair(node, m, "Resource", "NotResource", index)
        conditions: tuple[ConditionClause, ...] = ()
        if "Condition" in m:
            conditions = self.condition(m["Condition"][1])
        broken = len(self.diags) > before or effect is None or actions is None or resources is None
        return Statement(
            index=index,
            sid=sid,
            effect=effect or Effect.DENY,
            principals=principals,
            not_principal=not_principal,
            actions=actions or (),
            not_action=not_action,
            resources=resources or (),
            not_resource=not_resource,
            conditions=conditions,
            location=self.lines.location(node.pointer, node.offset),
            broken=broken,
        )

    def pair(
        self,
        node: JsonNode,
        m: dict[str, tuple[int, JsonNode]],
        name: str,
        not_name: str,
        index: int,
    ) -> tuple[tuple[Text, ...] | None, bool]:
        if name in m and not_name in m:
            self.report(
                "conflicting-elements",
                m[not_name][1],
                f"statement {index} has both {name} and {not_name}",
                f"keep one of them: {name} lists what the statement covers, {not_name} what it excludes",
                offset=m[not_name][0],
            )
            return None, False
        if name not in m and not_name not in m:
            self.report(
                "missing-element",
                node,
                f"statement {index} has no {name} or {not_name}",
                f'add "{name}": ...',
            )
            return None, False
        negated = not_name in m
        child = m[not_name if negated else name][1]
        return self.string_list(child, not_name if negated else name), negated

    def principal_pair(
        self, node: JsonNode, m: dict[str, tuple[int, JsonNode]], index: int
    ) -> tuple[tuple[PrincipalEntry, ...] | None, bool]:
        has_p, has_np = "Principal" in m, "NotPrincipal" in m
        if self.kind is PolicyKind.IDENTITY:
            for key in ("Principal", "NotPrincipal"):
                if key in m:
                    self.report(
                        "principal-not-allowed",
                        m[key][1],
                        f"{key} is not allowed in an identity-based policy (it applies to its owner)",
                        offset=m[key][0],
                    )
            return None, False
        if has_p and has_np:
            self.report(
                "conflicting-elements",
                m["NotPrincipal"][1],
                f"statement {index} has both Principal and NotPrincipal",
                "keep one of them",
                offset=m["NotPrincipal"][0],
            )
            return None, False
        if not has_p and not has_np:
            self.report(
                "missing-element",
                node,
                f"statement {index} has no Principal; resource policies must name who they apply to",
                'add "Principal": "*" for everyone (anonymous callers included), or '
                '{"AWS": "arn:aws:iam::123456789012:root"} for one account',
            )
            return None, False
        negated = has_np
        child = m["NotPrincipal" if negated else "Principal"][1]
        what = "NotPrincipal" if negated else "Principal"
        loc = self.lines.location(child.pointer, child.offset)
        if child.kind == "string":
            if child.value != "*":
                self.report(
                    "invalid-principal",
                    child,
                    f"{what} '{child.value}' is not valid; as a bare string only \"*\" is allowed",
                    f'write {{"AWS": "{child.value}"}} to name an AWS principal',
                )
                return None, negated
            return (PrincipalEntry("*", "*", loc),), negated
        if child.kind != "object":
            self.wrong_type(child, what, '"*" or an object such as {"AWS": [...]}')
            return None, negated
        entries: list[PrincipalEntry] = []
        if not child.members():
            self.report(
                "empty-principal",
                child,
                f"{what} is an empty object; it names nobody",
                'use "*" or {"AWS": "<account id or ARN>"}',
            )
            return None, negated
        ok = True
        for key, key_offset, value in child.members():
            if key not in PRINCIPAL_TYPES:
                hint = self.hint(key, PRINCIPAL_TYPES)
                self.report(
                    "invalid-principal-type",
                    value,
                    f"unknown principal type '{key}' in {what}",
                    (hint + " " if hint else "") + "valid types: " + ", ".join(PRINCIPAL_TYPES),
                    offset=key_offset,
                )
                ok = False
                continue
            texts = self.string_list(value, f"{what}.{key}")
            if texts is None:
                ok = False
                continue
            entries.extend(PrincipalEntry(key, t.value, t.location) for t in texts)
        return (tuple(entries) if ok else None), negated

    def condition(self, node: JsonNode) -> tuple[ConditionClause, ...]:
        if node.kind != "object":
            self.wrong_type(node, "Condition", "an object mapping operators to {key: value} objects")
            return ()
        clauses: list[ConditionClause] = []
        for op_name, op_offset, block in node.members():
            spec, message, hint = parse_operator(op_name, hints=self.hints_left > 0)
            self.hints_left -= 1
            if spec is None:
                self.report("unknown-operator", block, message or "", hint, offset=op_offset)
                continue
            if block.kind != "object":
                self.wrong_type(block, f"the {op_name} block", "an object mapping condition keys to values")
                continue
            for key, key_offset, values in block.members():
                texts = self.string_list(values, f"the value of {key}", allow_scalars=True, allow_empty=True)
                if texts is None:
                    continue
                clauses.append(
                    ConditionClause(spec, key, texts, self.lines.location(values.pointer, key_offset))
                )
        return tuple(clauses)


def parse(
    root: JsonNode, lines: LineIndex, kind: PolicyKind = PolicyKind.RESOURCE
) -> tuple[Policy | None, list[Diagnostic]]:
    """Build the AST. The policy is None only when the document's outer shape is unusable;
    otherwise statements with problems are omitted and every problem is in the list."""
    p = _Parser(lines, kind)
    policy = p.document(root)
    return policy, p.diags
