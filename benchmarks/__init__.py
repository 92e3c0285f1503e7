"""The queuestore benchmark harness: throughput, latency and server memory per job
for every backend, each figure side by side with the raw redis-py + hiredis ceiling measured
in the same run on the same server.

Run ``python -m benchmarks --help`` (or ``nox -s bench -- --help``); see docs/benchmarks.md.
Nothing here is imported by the library, and nothing here is a timed test.
"""
