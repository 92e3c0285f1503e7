"""The second OS process of the ``two-processes`` scenario: producers and consumers of its own on
the same queue; prints its :class:`~.ledger.Ledger` as JSON on stdout.

``python -m tests.faults.suite.worker '{"kind": ..., "url": ..., "prefix": ..., "plan": {...}, "seed": 1}'``
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import anyio

from .ledger import Ledger
from .load import LoadPlan
from .scenarios import apply_load, open_backend


async def main(args: dict[str, Any]) -> str:
    ledger = Ledger()
    cluster = args.get("cluster", [])
    producer = await open_backend(args["kind"], args["url"], args["prefix"], cluster=cluster)
    consumer = await open_backend(args["kind"], args["url"], args["prefix"], cluster=cluster)
    try:
        plan = LoadPlan(**args["plan"])
        await apply_load((producer, consumer), ledger, plan, "x", random.Random(args["seed"]))
    finally:
        await producer.aclose()
        await consumer.aclose()
    return ledger.to_json()


if __name__ == "__main__":
    print(anyio.run(main, json.loads(sys.argv[1])))
