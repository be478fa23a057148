"""Write every policy of the conformance cases (tests/conformance) and of examples/ into a libFuzzer
corpus directory.

    .venv/bin/python fuzz/seed_corpus.py fuzz/corpus

One file per distinct policy, named by its content hash. Policies given as objects are written
as compact JSON, those given as JSON text as that text.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted((ROOT / "tests" / "conformance" / "cases").glob("*.jsonl")),
    *sorted((ROOT / "tests" / "conformance" / "vectors").glob("*.jsonl")),
    *sorted((ROOT / "examples").glob("*.json")),
]


def policies() -> list[bytes]:
    out: list[bytes] = []
    for path in SOURCES:
        if path.suffix == ".json":
            out.append(path.read_bytes())
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            policy = json.loads(line).get("policy")
            if isinstance(policy, str):
                out.append(policy.encode("utf-8", "surrogatepass"))
            elif policy is not None:
                out.append(json.dumps(policy, separators=(",", ":"), ensure_ascii=False).encode())
    return out


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus")
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for data in policies():
        name = target / hashlib.sha1(data, usedforsecurity=False).hexdigest()
        if not name.exists():
            name.write_bytes(data)
            written += 1
    print(f"{written} new seed(s) in {target} from {len(SOURCES)} source file(s)")


if __name__ == "__main__":
    main()
