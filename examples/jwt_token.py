"""Make a signing key, its JWKS and a token, to try a COGNITO_USER_POOLS / JWT authorizer locally.

    python examples/jwt_token.py DIR [--access] [--scope "pets/read"] [--expired]

The first run writes DIR/signing-key.pem (keep it private) and DIR/jwks.json (the public key set
the authorizer reads through ``jwks_file``); every run prints a token signed with that key:
an ID token for audience ``example-client`` by default, an access token (``client_id`` and
``scope``) with ``--access``. The issuer is ``https://idp.example.com``. Uses PyJWT and
cryptography, which iamgate depends on already.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.example.com"
CLIENT = "example-client"
KID = "example-key-1"


def signing_key(directory: Path) -> rsa.RSAPrivateKey:
    pem = directory / "signing-key.pem"
    if pem.exists():
        key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": KID, "alg": "RS256", "use": "sig"}
    (directory / "jwks.json").write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
    return key


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--access", action="store_true", help="an access token instead of an ID token")
    parser.add_argument("--scope", default="", help="space-separated scopes of an access token")
    parser.add_argument("--expired", action="store_true", help="a token that expired an hour ago")
    parser.add_argument("--subject", default="alice")
    args = parser.parse_args(argv)
    key = signing_key(args.directory)
    now = int(time.time()) - (7200 if args.expired else 0)
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": args.subject,
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
    }
    if args.access:
        claims |= {"token_use": "access", "client_id": CLIENT, "scope": args.scope}
    else:
        claims |= {"token_use": "id", "aud": CLIENT, "email": f"{args.subject}@example.com"}
    print(jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
