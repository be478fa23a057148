"""Explain: render a decision and its per-statement trace for people.

Explanations go to the CLI, the decision log and the admin API, never to the caller
(STYLE principle 6). The trace itself is produced by ``CompiledPolicy.evaluate(explain=True)``.
"""

from __future__ import annotations

from .decision import Decision, DecisionEffect, StatementTrace

__all__ = ["render_decision", "summary"]


def summary(decision: Decision) -> str:
    """One line: the effect and what determined it."""
    refs = ", ".join(str(r) for r in decision.determining)
    if decision.effect is DecisionEffect.EXPLICIT_DENY:
        text = f"ExplicitDeny: denied by {refs}" if refs else "ExplicitDeny"
    elif decision.effect is DecisionEffect.ALLOW:
        text = f"Allow: allowed by {refs} (principal match: {decision.principal_match.value})"
    else:
        text = "ImplicitDeny: no statement allows the request"
    if decision.errors:
        text += "; errors: " + "; ".join(f"{r}: {e}" for r, e in decision.errors)
    return text


def _row(trace: StatementTrace) -> list[str]:
    verdict = "applies" if trace.applies else f"no ({trace.failed or 'error'})"
    return [str(trace.ref), trace.effect, verdict]


def render_decision(decision: Decision) -> str:
    """A table of statements, then why each did or did not apply, then the decision."""
    lines: list[str] = []
    traces = decision.trace or ()
    rows = [["statement", "effect", "applies"], *(_row(t) for t in traces)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for t in traces:
        lines.append(f"{t.ref} {t.effect}: {'applies' if t.applies else 'does not apply'}")
        if t.error:
            lines.append(f"    error: {t.error}")
        for check in t.elements:
            mark = "ok " if check.matched else "NO "
            lines.append(f"    {mark} {check.element}: {check.detail}")
        for op, key, atom in t.conditions:
            mark = "ok " if atom.result else "NO "
            got = ", ".join(atom.request_values) if atom.present else "(absent)"
            want = ", ".join(atom.policy_values) if atom.policy_values else "(no values)"
            lines.append(f"    {mark} Condition {op} {key}: request {got}; policy {want}; {atom.note}")
        if not t.conditions and all(c.matched for c in t.elements) and not t.error:
            lines.append("    ok  Condition: none")
    lines.append(f"Decision: {summary(decision)}")
    return "\n".join(lines)
