"""Store clients run as separate OS processes by the tests (``python -m tests.store.workers``).

Each command prints ``ready`` once started and, where it takes part in a start together, waits
for a line on stdin before it begins; it prints its results on stdout and exits 0, or exits 1
with the traceback on stderr.

* ``open URL``: open (creating and migrating) the store, print its generation.
* ``commit URL``: put one document in one transaction, print the generation after it.
* ``increment URL TIMES``: TIMES read-modify-write increments of the counter document, each in
  its own transaction.
"""

from __future__ import annotations

import sys
import time

from iamgate.store import open_store

COUNTER = ("usageplan", "", "counter")


def _go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def main(argv: list[str]) -> None:
    command, url = argv[0], argv[1]
    if command == "open":
        _go()
        store = open_store(url)
        print(store.generation(), flush=True)
        store.close()
    elif command == "commit":
        store = open_store(url)
        with store.transaction() as tx:
            tx.put("apikey", "", "from-another-process", {"value": "x", "enabled": True})
        print(store.generation(), flush=True)
        store.close()
    elif command == "increment":
        store = open_store(url)
        _go()
        for _ in range(int(argv[2])):
            with store.transaction() as tx:
                doc = tx.get(*COUNTER) or {"n": 0}
                time.sleep(0.001)  # widen the window between the read and the write
                tx.put(*COUNTER, {"n": doc["n"] + 1})
        store.close()
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
