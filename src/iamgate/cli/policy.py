"""``iamgate policy``: validate, simulate, test and lint resource policies.

Output formats are a contract that users and other tools script against; see docs/cli.md.
Exit codes: 0 success; 1 a policy is invalid, a test failed or a lint finding reached
``--fail-on``; 2 the command line or an input file could not be used.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO

import click

from iamgate.cases import CaseResult, method_arn, read_cases, run_case, with_gateway_defaults
from iamgate.cli.flags import (
    InputError,
    action_problem,
    api_from_flags,
    api_options,
    checked,
    context_problem,
    max_chars_limit,
    max_chars_option,
    method_flag_problem,
    path_problem,
    principal_problem,
    read_input,
    resource_problem,
    stage_problem,
)
from iamgate.policy import ApiRef, Decision, Diagnostic, PolicyKind, Prepared, Request, prepare, read_document
from iamgate.policy.decision import combine_policies
from iamgate.policy.explain import render_decision, summary
from iamgate.policy.extension_keys import extension_context

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """Work with API Gateway resource policies offline.

    \b
      validate  report every problem in policy files, with locations and help
      simulate  decide requests: a case file (JSON lines) or one request given as flags
      test      run case files with expected decisions as policy unit tests
      lint      find risky or pointless constructs (security review in CI)
    """


# --- validate -----------------------------------------------------------------------------
@policy.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--strict", is_flag=True, help="Also reject likely mistakes (duplicate Sids, unknown actions...)."
)
@click.option(
    "--strict-aws",
    is_flag=True,
    help="Refuse what AWS would not read as iamgate does: iamgate's own condition keys (iamgate:...).",
)
@click.option(
    "--kind",
    type=click.Choice([k.value for k in PolicyKind]),
    default="resource",
    show_default=True,
    help="resource: a resource policy (Principal required); identity: an identity policy (no Principal).",
)
@api_options("the policy is attached to (with --region and --account): resources of other APIs are reported")
@max_chars_option
def validate(
    files: tuple[str, ...],
    fmt: str,
    strict: bool,
    strict_aws: bool,
    kind: str,
    api_id: str | None,
    region: str | None,
    account: str | None,
    max_chars: int,
) -> None:
    """Check policy FILES ("-" for stdin) and report every problem.

    Text output: FILE:LINE:COL: severity code: message, then an indented help line.
    Exit status 1 when any file has an error.
    """
    api = api_from_flags(api_id, region, account)
    reports = []
    failed = False
    for path in files:
        data, name = read_input(path)
        _, diags = read_document(
            data,
            kind=PolicyKind(kind),
            max_chars=max_chars_limit(max_chars),
            strict=strict,
            api=api,
            strict_aws=strict_aws,
            aws_notes=True,
        )
        diags = [d.with_source(name) for d in diags]
        errors = sum(d.is_error for d in diags)
        failed = failed or errors > 0
        reports.append((name, diags, errors))
    if fmt == "json":
        out = {
            "files": [
                {"file": name, "valid": errors == 0, "diagnostics": [d.to_dict() for d in diags]}
                for name, diags, errors in reports
            ]
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for name, diags, errors in reports:
            for d in diags:
                click.echo(d.render())
            warnings = len(diags) - errors
            state = "invalid" if errors else "valid"
            click.echo(f"{name}: {state} ({errors} error(s), {warnings} warning(s))")
    sys.exit(1 if failed else 0)


# --- simulate -----------------------------------------------------------------------------
def _context(pairs: tuple[str, ...]) -> dict[str, object]:
    ctx: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="'--context'")
        problem = context_problem(key, value)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="'--context'")
        if key in ctx:  # a repeated key is multivalued
            prev = ctx[key]
            ctx[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            ctx[key] = value
    return ctx


def _named(pairs: tuple[str, ...], flag: str) -> dict[str, object]:
    """NAME=VALUE flags by name; a name given twice has several values."""
    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{pair}' is not NAME=VALUE", param_hint=f"'{flag}'")
        prev = out.get(name)
        out[name] = value if prev is None else [*prev, value] if isinstance(prev, list) else [prev, value]
    return out


def _claims(claims_json: str | None, pairs: tuple[str, ...]) -> dict[str, object] | None:
    """--claims (a JSON object) with --claim NAME=VALUE added (VALUE as JSON when it parses)."""
    if claims_json is None and not pairs:
        return None
    claims: dict[str, object] = {}
    if claims_json is not None:
        try:
            parsed = json.loads(claims_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="'--claims'") from None
        if not isinstance(parsed, dict):
            raise click.BadParameter("the claims are a JSON object: {...}", param_hint="'--claims'")
        claims.update(parsed)
    for name, value in _named(pairs, "--claim").items():
        values = value if isinstance(value, list) else [value]
        read: list[object] = []
        for text in values:
            try:
                read.append(json.loads(str(text)))
            except ValueError:
                read.append(text)
        claims[name] = read[0] if len(read) == 1 else read
    return claims


def _emit(stream: IO[str], result: CaseResult) -> None:
    stream.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")


@policy.command()
@click.option("--cases", "cases_path", metavar="FILE", help="Case file (JSON lines, '-' for stdin).")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy file for one request given as flags.")
@click.option(
    "--principal",
    metavar="ARN",
    callback=checked(principal_problem),
    help="Caller ARN (or account id); omit for an anonymous caller.",
)
@click.option("--action", default="execute-api:Invoke", show_default=True, callback=checked(action_problem))
@click.option(
    "--resource",
    metavar="ARN",
    callback=checked(resource_problem),
    help="Method ARN; or use --method/--path/--stage.",
)
@click.option("--method", callback=checked(method_flag_problem), help="HTTP method, to build the method ARN.")
@click.option(
    "--path", "req_path", callback=checked(path_problem), help="Request path after the stage, e.g. /pets/7."
)
@click.option("--stage", callback=checked(stage_problem), help="Stage name, e.g. prod.")
@api_options("(with --region and --account) for the method ARN and the execute-api:/ shorthand")
@click.option(
    "--context",
    "contexts",
    multiple=True,
    metavar="KEY=VALUE",
    help="A condition key; repeat a key for several values.",
)
@click.option(
    "--header", "headers", multiple=True, metavar="NAME=VALUE", help="iamgate:RequestHeader/NAME; repeat."
)
@click.option(
    "--query", "queries", multiple=True, metavar="NAME=VALUE", help="iamgate:QueryString/NAME; repeat."
)
@click.option(
    "--path-param", "path_params", multiple=True, metavar="NAME=VALUE", help="iamgate:PathParameter/NAME."
)
@click.option("--claims", "claims_json", metavar="JSON", help="The verified token's claims (a JSON object).")
@click.option(
    "--claim",
    "claim_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="One claim (VALUE read as JSON when it is JSON, else as text); with --claims, added to it.",
)
@click.option(
    "--authorizer-context",
    "authorizer_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="iamgate:AuthorizerContext/NAME.",
)
@click.option("--api-key-id", metavar="ID", help="iamgate:ApiKeyId.")
@click.option("--client-cert-subject", metavar="DN", help="iamgate:ClientCert/SubjectDN.")
@click.option("--client-cert-issuer", metavar="DN", help="iamgate:ClientCert/IssuerDN.")
@click.option("--client-cert-serial", metavar="SERIAL", help="iamgate:ClientCert/SerialNumber.")
@click.option(
    "--client-cert-san", "client_cert_sans", multiple=True, metavar="NAME", help="iamgate:ClientCert/SAN."
)
@click.option(
    "--resource-path", metavar="TEMPLATE", help="iamgate:ResourcePath, the route's path (/pets/{id})."
)
@click.option(
    "--stage-policy",
    "stage_policy_path",
    metavar="FILE",
    help="The stage's own policy: it must allow too (iamgate's extension).",
)
@click.option(
    "--route-policy",
    "route_policy_path",
    metavar="FILE",
    help="The route's own policy: it must allow too (iamgate's extension).",
)
@click.option(
    "--explain/--brief",
    default=True,
    show_default=True,
    help="With --policy: each statement and why it did or did not apply, or only the decision.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object with the decision and the trace.")
@max_chars_option
def simulate(
    cases_path: str | None,
    policy_path: str | None,
    principal: str | None,
    action: str,
    resource: str | None,
    method: str | None,
    req_path: str | None,
    stage: str | None,
    api_id: str | None,
    region: str | None,
    account: str | None,
    contexts: tuple[str, ...],
    headers: tuple[str, ...],
    queries: tuple[str, ...],
    path_params: tuple[str, ...],
    claims_json: str | None,
    claim_pairs: tuple[str, ...],
    authorizer_pairs: tuple[str, ...],
    api_key_id: str | None,
    client_cert_subject: str | None,
    client_cert_issuer: str | None,
    client_cert_serial: str | None,
    client_cert_sans: tuple[str, ...],
    resource_path: str | None,
    stage_policy_path: str | None,
    route_policy_path: str | None,
    explain: bool,
    as_json: bool,
    max_chars: int,
) -> None:
    """Decide requests against a policy.

    \b
    With --cases FILE: reads lines {"name", "policy", "request"} (expect and why are ignored)
    and writes, in input order, one JSON line per case:
      {"name": ..., "decision": "Allow"|"ExplicitDeny"|"ImplicitDeny"|"Invalid",
       "statements": [{"index": N, "sid": ...}], "diagnostics": [...]}
    Exit status 0 unless the input cannot be read.

    \b
    With --policy FILE: one request from the flags; prints each statement and why it did or did
    not apply, then the decision (--json for machines). aws:CurrentTime, aws:EpochTime and
    aws:SecureTransport=true are filled in unless given, as the gateway does. iamgate's own keys
    come from --header, --query, --path-param, --claims/--claim, --authorizer-context,
    --api-key-id, --client-cert-*, --resource-path (and iamgate:Stage, iamgate:HttpMethod from
    --stage and --method), read as the gateway reads a request.
    """
    api = api_from_flags(api_id, region, account)
    if (cases_path is None) == (policy_path is None):
        raise click.UsageError("give exactly one of --cases FILE or --policy FILE")
    if cases_path is not None:
        data, name = read_input(cases_path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(name, f"not UTF-8 (byte offset {exc.start})") from None
        base = Path(cases_path).parent if cases_path != "-" else Path.cwd()
        out = sys.stdout
        for case in read_cases(text, source=name, base=base):
            _emit(out, run_case(case, api=api, max_chars=max_chars_limit(max_chars), source=name))
        return
    assert policy_path is not None  # checked above
    data, name = read_input(policy_path)
    if resource is None:
        if not (method and req_path is not None and stage):
            raise click.UsageError("give --resource ARN, or --method, --path and --stage")
        if api is None:
            raise click.UsageError("--method/--path/--stage need --api-id, --region and --account")
        resource = method_arn(api, stage, method, req_path)
    elif api is None:
        api = ApiRef.from_arn(resource)
    ctx = _context(contexts)
    lowered = {k.lower() for k in ctx}
    ctx = with_gateway_defaults(ctx, time.time())
    layers: list[tuple[str, Prepared]] = []
    for label, path in (("api", policy_path), ("stage", stage_policy_path), ("route", route_policy_path)):
        if path is None:
            continue
        layer_data, layer_name = (data, name) if label == "api" else read_input(path)
        prepared = prepare(layer_data, api=api, max_chars=max_chars_limit(max_chars), source_name=layer_name)
        if prepared.policy is None:
            _print_invalid(prepared.diagnostics, as_json)
            sys.exit(1)
        layers.append((label, prepared))
    claims = _claims(claims_json, claim_pairs)
    cert: dict[str, object] = {}
    for field_name, value in (
        ("subjectDN", client_cert_subject),
        ("issuerDN", client_cert_issuer),
        ("serialNumber", client_cert_serial),
    ):
        if value is not None:
            cert[field_name] = value
    if client_cert_sans:
        cert["SAN"] = list(client_cert_sans)
    keys = sorted({k for _, p in layers if p.policy is not None for k in p.policy.extension_keys})
    extra = extension_context(
        keys,
        headers=_named(headers, "--header"),
        query=_named(queries, "--query"),
        path_parameters=_named(path_params, "--path-param"),
        claims=claims,
        authorizer_context=_named(authorizer_pairs, "--authorizer-context"),
        api_key_id=api_key_id,
        client_cert=cert or None,
        stage=stage,
        http_method=method.upper() if method else None,
        resource_path=resource_path,
    )
    for key, found in extra.items():
        if key not in lowered:  # --context wins
            ctx[key] = list(found) if isinstance(found, tuple) else found
    request = Request.build(principal, action, resource, ctx)
    decisions: list[tuple[str, Decision]] = []
    for label, prepared in layers:
        assert prepared.policy is not None  # invalid ones ended the command above
        decisions.append((label, prepared.policy.evaluate(request, explain=True)))
    diagnostics = [d for _, p in layers for d in p.diagnostics]
    asked = {
        "principal": principal,
        "action": action,
        "resource": request.resource,
        "context": dict(request.context),
    }
    if len(decisions) == 1:  # the resource policy alone: as it always was
        decision = decisions[0][1]
        if as_json:
            payload = {"request": asked, **decision.to_dict()}
            payload["diagnostics"] = [d.to_dict() for d in diagnostics]
            click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
            return
        for d in diagnostics:
            click.echo(d.render(), err=True)
        click.echo(f"Request: {principal or 'anonymous'} {action} {request.resource}")
        click.echo(render_decision(decision) if explain else f"Decision: {summary(decision)}")
        return
    effect, decided_by = combine_policies(decisions)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "request": asked,
                    "decision": effect.value,
                    "policy": decided_by,
                    "policies": [{"policy": label, **d.to_dict()} for label, d in decisions],
                    "diagnostics": [d.to_dict() for d in diagnostics],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for d in diagnostics:
        click.echo(d.render(), err=True)
    click.echo(f"Request: {principal or 'anonymous'} {action} {request.resource}")
    for label, decision in decisions:
        click.echo(f"\n== the {label} policy ==")
        click.echo(render_decision(decision) if explain else f"Decision: {summary(decision)}")
    verdict = effect.value
    if decided_by is not None:
        deciding = dict(decisions)[decided_by]
        verdict += f": decided by the {decided_by} policy ({summary(deciding)})"
    click.echo(f"\nDecision of all policies: {verdict}")


def _print_invalid(diags: tuple[Diagnostic, ...], as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {"decision": "Invalid", "statements": [], "diagnostics": [d.to_dict() for d in diags]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for d in diags:
        click.echo(d.render())
    click.echo("Decision: Invalid (the policy has errors)")


# --- test ---------------------------------------------------------------------------------
@policy.command()
@click.argument("files", nargs=-1, required=True)
@api_options("(with --region and --account) for the execute-api:/ shorthand; default: from each request")
@click.option("-v", "--verbose", is_flag=True, help="Also list passing cases.")
@max_chars_option
def test(
    files: tuple[str, ...],
    api_id: str | None,
    region: str | None,
    account: str | None,
    verbose: bool,
    max_chars: int,
) -> None:
    """Run case FILES (JSON lines with "expect") as policy unit tests.

    Each case line: {"name", "policy" or "policy_file", "request", "expect"}, with expect one of
    Allow, ExplicitDeny, ImplicitDeny, Invalid. Failures are shown with the policy's explanation;
    the last line is "N passed, M failed". Exit status 1 on any failure.
    """
    api = api_from_flags(api_id, region, account)
    passed = failed = 0
    for path in files:
        data, name = read_input(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(name, f"not UTF-8 (byte offset {exc.start})") from None
        base = Path(path).parent if path != "-" else Path.cwd()
        for case in read_cases(text, source=name, base=base):
            label = f"{name}:{case.line}: {case.name or '(unnamed case)'}"
            if case.expect is None:
                failed += 1
                click.echo(f'FAIL {label}: the case has no valid "expect"')
                for d in case.problems:
                    click.echo(f"    {d.render()}")
                continue
            result = run_case(case, api=api, max_chars=max_chars_limit(max_chars), explain=True, source=name)
            if result.decision == case.expect:
                passed += 1
                if verbose:
                    click.echo(f"ok   {label}: {result.decision}")
                continue
            failed += 1
            click.echo(f"FAIL {label}: expected {case.expect}, got {result.decision}")
            for d in result.diagnostics:
                click.echo("    " + d.render().replace("\n", "\n    "))
            if result.explained is not None:
                click.echo("    " + render_decision(result.explained).replace("\n", "\n    "))
            elif result.result is not None:
                click.echo(f"    {summary(result.result)}")
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
