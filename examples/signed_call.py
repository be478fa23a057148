"""Call an iamgate AWS_IAM method with a SigV4-signed request, as the AWS SDKs sign them.

    python examples/signed_call.py URL [METHOD [BODY]]

The credentials are found as boto3 finds them: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for
role sessions, AWS_SESSION_TOKEN (or a profile). The region is AWS_REGION, else us-east-1.
Prints the status and the body; the exit status is 0 for a 2xx answer and 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    url = argv[1]
    if not url.startswith(("http://", "https://")):
        print(f"not an http(s) URL: {url}", file=sys.stderr)
        return 2
    method = argv[2] if len(argv) > 2 else "GET"
    body = argv[3].encode() if len(argv) > 3 else None
    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        print("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION", "us-east-1")

    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    prepared = request.prepare()

    # send exactly what was signed (no proxy: the gateway is called directly)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    headers = dict(prepared.headers)
    # S310 warns about file: URLs; the scheme was checked above
    outgoing = urllib.request.Request(prepared.url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with opener.open(outgoing, timeout=10) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    print(status)
    print(payload.decode("utf-8", "replace"))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
