"""docs/authentication.md runs as written, so the documentation cannot rot.

The blocks of the page marked ``<!-- docs-test: NAME -->`` are executed:

* the walkthrough: the ``export`` lines, ``iamgate serve --config examples/auth.yaml`` exactly,
  and the two ``examples/signed_call.py`` commands (real botocore signing, run with
  ``subprocess``); their output must be the output the page shows: the reader allowed, the
  intern denied; then the ``curl --aws-sigv4`` variant;
* each mode's example: its configuration block is served, its helper started
  (``examples/lambda_authorizer.py``, ``examples/jwt_token.py``), and every ``curl`` line must
  answer the status its ``# -> NNN`` comment promises;
* the identities reference block is a valid configuration.

The only changes made to the commands: the ports (8080 and 9001 become free ports), the
``/tmp/iamgate-jwt`` directory (a temporary one), and ``python`` (this interpreter).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iamgate.config.load import parse_config
from tests.gateway.conftest import IAMGATE, ROOT_DIR, Gateway, free_port, start_gateway

DOC = ROOT_DIR / "docs" / "authentication.md"
_BLOCK = re.compile(r"<!-- docs-test: ([\w-]+) -->\n```[\w]*\n(.*?)```", re.DOTALL)
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def blocks() -> dict[str, str]:
    return dict(_BLOCK.findall(DOC.read_text()))


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined; blank and comment-only lines dropped."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def exports(text: str) -> dict[str, str]:
    out = {}
    for line in logical_lines(text):
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        out[name] = value
    return out


def quiet_aws_env(tmp: Path) -> dict[str, str]:
    """Keep the signer from the test machine's own AWS configuration."""
    return {
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def local(text: str, *, port: int, helper_port: int = 0, jwt_dir: Path | None = None) -> str:
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    if helper_port:
        text = text.replace("9001", str(helper_port))
    if jwt_dir is not None:
        text = text.replace("/tmp/iamgate-jwt", str(jwt_dir))
    return re.sub(r"(?<![\w/.-])python ", shlex.quote(sys.executable) + " ", text)


def bash(script: str, env: dict[str, str], cwd: Path = ROOT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@contextlib.contextmanager
def serve_in_place(config: str, env: dict[str, str], tmp: Path) -> Iterator[Gateway]:
    """``iamgate serve --config CONFIG`` from the repository root (relative paths as the docs
    have them), on free ports."""
    port, admin = free_port(), free_port()
    out, err = tmp / "serve.out", tmp / "serve.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [IAMGATE, "serve", "--config", config, "--port", str(port), "--admin-port", str(admin)],
            cwd=ROOT_DIR,
            env=env,
            stdout=o,
            stderr=e,
        )
    gw = Gateway(proc, port, admin, ROOT_DIR / config, out, err)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"iamgate exited with {proc.returncode}: {err.read_text()}")
            with contextlib.suppress(OSError):
                if gw.admin("/readyz")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"iamgate did not become ready: {err.read_text()}")
            time.sleep(0.05)
        yield gw
    finally:
        gw.stop()


# --- the walkthrough -------------------------------------------------------------------------------


def test_walkthrough_signed_call_is_allowed_for_one_role_and_denied_for_the_other(tmp_path: Path) -> None:
    docs = blocks()
    secrets = exports(docs["walkthrough-exports"])
    assert set(secrets) == {
        "PETS_READER_SECRET",
        "PETS_READER_TOKEN",
        "PETS_INTERN_SECRET",
        "PETS_INTERN_TOKEN",
    }
    assert logical_lines(docs["walkthrough-serve"]) == ["iamgate serve --config examples/auth.yaml"]
    # the configuration reads every secret from the environment: none is in the file
    config_text = (ROOT_DIR / "examples" / "auth.yaml").read_text()
    assert not any(value in config_text for value in secrets.values())
    for name in secrets:
        assert f"_env: {name}" in config_text

    env = {**os.environ, **secrets, **quiet_aws_env(tmp_path)}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    with serve_in_place("examples/auth.yaml", env, tmp_path) as gw:
        calls = logical_lines(local(docs["walkthrough-calls"], port=gw.port))
        assert len(calls) == 2
        assert all("examples/signed_call.py" in call for call in calls)
        reader, intern = (bash(call, env) for call in calls)
        assert reader.returncode == 0, reader.stderr
        assert intern.returncode == 1, intern.stderr
        assert reader.stdout + intern.stdout == docs["walkthrough-output"]
        shown = json.loads(docs["walkthrough-log"])
        logged = [e for e in gw.access_log() if e.get("identity.accessKey") == "ASIAPETSREADER000001"]
        assert {k: logged[0].get(k) for k in shown} == shown

        if shutil.which("curl") is not None:
            curl = logical_lines(local(docs["walkthrough-curl"], port=gw.port))
            assert len(curl) == 1
            done = bash(curl[0], env)
            assert statuses(done.stdout) == expected_statuses(curl), done.stdout + done.stderr


# --- each mode's example ----------------------------------------------------------------------------


def statuses(output: str) -> list[int]:
    return [int(s) for s in re.findall(r"HTTP/1\.1 (\d{3}) ", output)]


def expected_statuses(lines: list[str]) -> list[int]:
    out = []
    for line in lines:
        if line.startswith("curl "):
            m = re.search(r"# -> (\d{3})", line)
            assert m is not None, f"a curl line of the docs says no status: {line}"
            out.append(int(m.group(1)))
    return out


class Script:
    """A docs command block: what runs before ``iamgate serve``, the servers it starts in the
    background, and the calls after it."""

    def __init__(self, text: str) -> None:
        self.prelude: list[str] = []
        self.serve: str | None = None
        self.background: list[str] = []
        self.calls: list[str] = []
        for line in logical_lines(text):
            if line.startswith("iamgate serve"):
                self.serve = line.removesuffix("&").strip()
            elif line.endswith("&"):
                self.background.append(line.removesuffix("&").strip())
            elif self.serve is None:
                self.prelude.append(line)
            else:
                self.calls.append(line)

    def prelude_env(self, env: dict[str, str]) -> dict[str, str]:
        """Run the lines before ``iamgate serve`` and keep every variable they set."""
        done = bash("set -a\n" + "\n".join(self.prelude) + "\nenv -0", env)
        assert done.returncode == 0, done.stderr
        return dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)

    def check_calls(self, env: dict[str, str]) -> None:
        done = bash("\n".join(self.calls), env)
        assert done.returncode == 0, done.stderr
        assert statuses(done.stdout) == expected_statuses(self.calls), done.stdout


@needs_curl
def test_custom_authorizer_example(tmp_path: Path) -> None:
    docs = blocks()
    helper_port = free_port()
    config = local(docs["custom-config"], port=0, helper_port=helper_port)
    assert f"url: http://127.0.0.1:{helper_port}/" in config
    helper_command = local("python examples/lambda_authorizer.py 9001", port=0, helper_port=helper_port)
    helper = subprocess.Popen(shlex.split(helper_command), cwd=ROOT_DIR, stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout is not None
        assert "listening" in helper.stdout.readline()
        gw = start_gateway(tmp_path, config)
        try:
            script = Script(local(docs["custom-calls"], port=gw.port, helper_port=helper_port))
            assert script.serve == "iamgate serve --config custom.yaml"
            assert script.background == [helper_command]
            assert len(script.calls) == 6
            script.check_calls({**os.environ})
        finally:
            gw.stop()
    finally:
        helper.terminate()
        helper.wait(10)
        if helper.stdout is not None:
            helper.stdout.close()


def test_custom_authorizer_example_in_process(tmp_path: Path) -> None:
    """The commented ``function:`` alternative of the same configuration works too."""
    config = blocks()["custom-config"]
    assert "# function: lambda_authorizer:handler" in config
    config = re.sub(r"\n\s+url: .*", "", config).replace("# function:", "function:")
    gw = start_gateway(tmp_path, config, env={"PYTHONPATH": str(ROOT_DIR / "examples")})
    try:
        assert gw.request("GET", "/prod/pets", headers={"Authorization": "alice-token"})[0] == 200
        assert gw.request("DELETE", "/prod/pets", headers={"Authorization": "bob-token"})[0] == 403
        assert gw.request("GET", "/prod/pets", headers={"Authorization": "eve-token"})[0] == 401
    finally:
        gw.stop()


@needs_curl
def test_jwt_example(tmp_path: Path) -> None:
    docs = blocks()
    jwt_dir = tmp_path / "jwt"
    gw = start_gateway(tmp_path, local(docs["jwt-config"], port=0, jwt_dir=jwt_dir))
    try:
        script = Script(local(docs["jwt-calls"], port=gw.port, jwt_dir=jwt_dir))
        assert script.serve == "iamgate serve --config jwt.yaml"
        env = script.prelude_env({**os.environ})
        assert (jwt_dir / "jwks.json").exists()
        assert len(script.calls) == 6
        script.check_calls(env)
    finally:
        gw.stop()


@needs_curl
def test_api_key_example(tmp_path: Path) -> None:
    docs = blocks()
    script = Script(docs["apikey-calls"])
    assert script.serve == "iamgate serve --config keys.yaml"
    env = script.prelude_env({**os.environ, "PATH": os.environ["PATH"]})
    assert len(env["PETS_API_KEY"]) >= 20
    gw = start_gateway(tmp_path, docs["apikey-config"], env={"PETS_API_KEY": env["PETS_API_KEY"]})
    try:
        script = Script(local(docs["apikey-calls"], port=gw.port))
        assert len(script.calls) == 3
        script.check_calls(env)
    finally:
        gw.stop()


def test_identities_reference_is_a_valid_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOC.read_text()
    start = text.index("## Identities (`identities`)")
    block = re.search(r"```yaml\n(identities:.*?)```", text[start:], re.DOTALL)
    assert block is not None
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "alice-extra.json").write_text(
        '{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*"}]}'
    )
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "bob.key").write_text("bob-secret\n")
    for name in ("ALICE_SECRET", "READER_SECRET", "READER_TOKEN"):
        monkeypatch.setenv(name, "x")
    source = block.group(1)
    config, diags = parse_config(source + "apis: []\n", base_dir=tmp_path)
    assert config is not None, [f"{d.code} {d.location.pointer} {d.message}" for d in diags]
    assert len(config.auth.store) == 3
