"""Turn measurements into result entries (``latest.json``) and Markdown tables.

Every throughput entry carries ``backend, scenario, jobs, jobs_per_s, ceiling_jobs_per_s,
ratio, target, pass`` (target and pass are null for a scenario without a target); latency,
memory, linear, skip and error entries carry a ``kind`` and their own fields. The first entry
is ``{"kind": "meta", ...}``: the machine, the server, the arguments and the load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.scale import SCALE_OPS, ScaleResult
from benchmarks.scenarios import LinearResult, MemoryResult
from benchmarks.workload import Measure, percentile

__all__ = [
    "CEILING_OF",
    "LATENCY_OPS",
    "REFERENCE_CEILING_OF",
    "TARGETS",
    "ceiling_entry",
    "latency_entries",
    "linear_entry",
    "markdown",
    "memory_entry",
    "ratio_text",
    "scale_entry",
    "throughput_entry",
    "write_json",
]

#: (family, scenario) -> ceiling name; "a+b" is the harmonic combination of a and b
CEILING_OF: dict[tuple[str, str], str] = {
    **{
        (fam, s): c
        for fam in ("lists", "streams")
        for s, c in (
            ("enqueue_1", "evalsha_enqueue_1"),
            ("enqueue_32", "evalsha_enqueue_32"),
            ("dequeue_ack_1", "evalsha_dequeue_ack_1"),
            ("dequeue_ack_32", "evalsha_dequeue_ack_32"),
        )
    },
    ("lists", "enqueue_many"): "lpush_pipeline_100",
    ("lists", "dequeue_many"): "evalsha_batch_100",
    ("lists", "end_to_end"): "lpush_pipeline_100+evalsha_batch_100",
    ("streams", "enqueue_many"): "xadd_pipeline_100",
    ("streams", "dequeue_many"): "xreadgroup_100_xackdel",
    ("streams", "end_to_end"): "xadd_pipeline_100+xreadgroup_100_xackdel",
}

#: (family, scenario) -> ceilings reported beside the figure, with no target: one that does less
#: than the same work (XACK alone keeps every acked entry in the stream), and one that frees the
#: batch as the backend does when the batch is the stream's head, without the checks that make
#: that right (nothing below the batch still pending)
REFERENCE_CEILING_OF: dict[tuple[str, str], tuple[str, ...]] = {
    ("streams", "dequeue_many"): ("xreadgroup_100_xack", "xreadgroup_100_xacktrim")
}

#: scenario -> (second ceiling, target): the same figure beside one script per job, pipelined
SCRIPT_CEILING_OF: dict[str, tuple[str, float]] = {"enqueue_many": ("evalsha_pipeline_100", 1.2)}

#: scenario -> minimum ratio to its ceiling; absent = no target, reported only
TARGETS: dict[str, float] = {
    "enqueue_1": 0.80,
    "enqueue_many": 0.80,
    "dequeue_ack_32": 0.60,
    "dequeue_many": 0.60,
}
#: the stretch: 32 consumers with plain dequeue()/ack() at >= 1.5x the raw 32-task ceiling
STRETCH_TARGET = 1.5
MEMORY_TARGET = 1.0  # bytes per acked job
RAW_MEMORY_TARGET = 1.5  # bytes per queued job over a raw hash + list of the same payloads
SCALE_TARGET = 2.0  # µs per op at the largest size over the smallest
LINEAR_TARGET = 0.15  # spread of jobs/s across sizes

#: latency ops recorded per scenario (dequeue_ack = from calling dequeue to ack returning)
LATENCY_OPS = {"enqueue_32": ("enqueue",), "dequeue_ack_32": ("dequeue", "ack", "dequeue_ack")}


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def throughput_entry(
    backend: str,
    scenario: str,
    m: Measure,
    ceiling_name: str | None,
    ceiling_rate: float | None,
    target: float | None,
) -> dict[str, Any]:
    ratio = m.jobs_per_s / ceiling_rate if ceiling_rate else None
    return {
        "kind": "throughput",
        "backend": backend,
        "scenario": scenario,
        "jobs": m.jobs,
        "jobs_per_s": _r(m.jobs_per_s),
        "ceiling": ceiling_name,
        "ceiling_jobs_per_s": _r(ceiling_rate),
        "ratio": _r(ratio, 3),
        "target": target,
        "pass": None if target is None or ratio is None else ratio >= target,
        "seconds": _r(m.seconds, 3),
        "client_cpu_us_per_job": _r(m.client_cpu_us_per_job()),
        "server_cpu_us_per_job": _r(m.server_cpu_us_per_job()),
        "notes": m.notes,
    }


def ceiling_entry(
    name: str, description: str, m: Measure | None, rate: float | None = None
) -> dict[str, Any]:
    r = m.jobs_per_s if m is not None else rate
    return {
        "kind": "ceiling",
        "backend": "raw-redis-py",
        "scenario": name,
        "description": description,
        "jobs": m.jobs if m is not None else None,
        "jobs_per_s": _r(r),
        "ceiling_jobs_per_s": _r(r),
        "ratio": 1.0,
        "target": None,
        "pass": None,
        "seconds": _r(m.seconds, 3) if m is not None else None,
        "client_cpu_us_per_job": _r(m.client_cpu_us_per_job()) if m is not None else None,
        "server_cpu_us_per_job": _r(m.server_cpu_us_per_job()) if m is not None else None,
    }


def latency_entries(backend: str, scenario: str, m: Measure) -> list[dict[str, Any]]:
    return [
        {
            "kind": "latency",
            "backend": backend,
            "scenario": scenario,
            "op": op,
            "samples": len(samples),
            "p50_ms": _r(percentile(samples, 50), 3),
            "p99_ms": _r(percentile(samples, 99), 3),
        }
        for op, samples in m.latencies.items()
        if samples
    ]


def memory_entry(
    backend: str,
    res: MemoryResult,
    raw_per_job: float | None = None,
    keys: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``raw_per_job``: bytes per job of the raw hash + list; ``keys``: the queue's keys after the drain."""
    raw_ratio = res.bytes_per_queued_job / raw_per_job if raw_per_job else None
    return {
        "kind": "memory",
        "backend": backend,
        "scenario": "memory",
        "jobs": res.jobs,
        "bytes_per_queued_job": _r(res.bytes_per_queued_job),
        "bytes_per_acked_job": _r(res.bytes_per_acked_job, 2),
        "target": MEMORY_TARGET,
        "pass": res.bytes_per_acked_job <= MEMORY_TARGET,
        "source": res.source,
        "bytes_baseline": res.baseline,
        "bytes_queued": res.queued,
        "bytes_after_drain": res.acked,
        "retained_first_cycle_per_job": _r(res.retained_first_cycle, 2),
        "raw_bytes_per_queued_job": _r(raw_per_job),
        "ratio_to_raw": _r(raw_ratio, 3),
        "raw_target": RAW_MEMORY_TARGET,
        "raw_pass": None if raw_ratio is None else raw_ratio <= RAW_MEMORY_TARGET,
        "keys_after_drain": keys,
    }


def scale_entry(backend: str, res: ScaleResult) -> dict[str, Any]:
    ratios = {op: res.ratio(op) for op in SCALE_OPS}
    return {
        "kind": "scale",
        "backend": backend,
        "scenario": "scale",
        "sizes": res.sizes,
        "samples": res.samples,
        "load_jobs_per_s": [_r(x) for x in res.load_jobs_per_s],
        "us_per_op": {op: [_r(x) for x in xs] for op, xs in res.us_per_op.items()},
        "ratio": {op: _r(x, 2) for op, x in ratios.items()},
        "target": SCALE_TARGET,
        "pass": all(x is not None and x <= SCALE_TARGET for x in ratios.values()),
        "errors": res.errors,
    }


def linear_entry(backend: str, res: LinearResult) -> dict[str, Any]:
    return {
        "kind": "linear",
        "backend": backend,
        "scenario": "linear",
        "sizes": res.sizes,
        "runs": res.runs,
        "jobs_per_s": [_r(x) for x in res.jobs_per_s],
        "client_cpu_us_per_job": [_r(x) for x in res.client_cpu_us_per_job],
        "server_cpu_us_per_job": [_r(x) for x in res.server_cpu_us_per_job],
        "spread": _r(res.spread, 3),
        "target": LINEAR_TARGET,
        "pass": res.spread <= LINEAR_TARGET,
    }


def write_json(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=1) + "\n")


# -- Markdown ------------------------------------------------------------------------------------


def _n(x: float | None, fmt: str = ",.0f") -> str:
    return "—" if x is None else format(x, fmt)


def ratio_text(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _verdict(p: bool | None) -> str:
    return "—" if p is None else ("**pass**" if p else "**short**")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown(entries: list[dict[str, Any]]) -> str:
    by = lambda kind: [e for e in entries if e.get("kind") == kind]  # noqa: E731
    lines: list[str] = []
    meta = next(iter(by("meta")), None)
    if meta:
        lines.append(
            f"queuestore benchmarks — {meta.get('server') or 'no server'}, Python {meta.get('python')}, "
            f"redis-py {meta.get('redis_py')} (hiredis {meta.get('hiredis')}), {meta.get('cpus')} CPUs, "
            f"--jobs {meta.get('jobs')}, concurrency {meta.get('concurrency')}, batch {meta.get('batch')}, "
            f"pool {meta.get('pool') or 'defaults'}; load avg before {meta.get('load_before')} "
            f"after {meta.get('load_after')}; sum(range(1000)) takes "
            f"{meta.get('calibration_sum_range_1000_us')} µs; {meta.get('elapsed_s')} s"
        )
        lines.append("")
    if by("ceiling"):
        lines += ["### Ceiling: raw redis-py asyncio + hiredis, same server, same run", ""]
        lines += _table(
            ["ceiling", "work", "jobs", "jobs/s", "client µs/job", "server µs/job"],
            [
                [
                    e["scenario"],
                    e["description"],
                    _n(e["jobs"]),
                    _n(e["jobs_per_s"]),
                    _n(e["client_cpu_us_per_job"], ".1f"),
                    _n(e["server_cpu_us_per_job"], ".1f"),
                ]
                for e in by("ceiling")
            ],
        )
        lines.append("")
    if by("throughput"):
        lines += ["### Throughput, as a ratio to the ceiling", ""]
        lines += _table(
            ["backend", "scenario", "jobs", "jobs/s", "ceiling", "ceiling jobs/s", "ratio", "target",
             "result", "client µs/job", "server µs/job"],
            [
                [
                    e["backend"],
                    e["scenario"],
                    _n(e["jobs"]),
                    _n(e["jobs_per_s"]),
                    e["ceiling"] or "—",
                    _n(e["ceiling_jobs_per_s"]),
                    _n(e["ratio"], ".2f"),
                    "—" if e["target"] is None else f"≥ {e['target']:.2f}",
                    _verdict(e["pass"]),
                    _n(e["client_cpu_us_per_job"], ".1f"),
                    _n(e["server_cpu_us_per_job"], ".1f"),
                ]
                for e in by("throughput")
            ],
        )  # fmt: skip
        lines.append("")
    if by("latency"):
        lines += ["### Latency under 32 concurrent tasks (ms)", ""]
        lines += _table(
            ["backend", "scenario", "op", "p50", "p99", "samples"],
            [
                [e["backend"], e["scenario"], e["op"], _n(e["p50_ms"], ".3f"), _n(e["p99_ms"], ".3f"),
                 _n(e["samples"])]
                for e in by("latency")
            ],
        )  # fmt: skip
        lines.append("")
    if by("memory"):
        lines += ["### Memory per job", ""]
        lines += _table(
            ["backend", "jobs", "bytes/queued job", "bytes/acked job", "target", "result",
             "kept by 1st cycle/job", "measured by"],
            [
                [e["backend"], _n(e["jobs"]), _n(e["bytes_per_queued_job"], ".1f"),
                 _n(e["bytes_per_acked_job"], ".2f"), f"≤ {e['target']:g}", _verdict(e["pass"]),
                 _n(e["retained_first_cycle_per_job"], ".2f"), e["source"]]
                for e in by("memory")
            ],
        )  # fmt: skip
        lines.append("")
    if by("memory") and any(e.get("keys_after_drain") is not None for e in by("memory")):
        lines += ["### Memory against a raw hash + list, and what a drained queue keeps", ""]
        lines += _table(
            ["backend", "bytes/queued job", "raw bytes/job", "ratio", "target", "result",
             "keys after drain (type length bytes)"],
            [
                [e["backend"], _n(e["bytes_per_queued_job"], ".1f"), _n(e["raw_bytes_per_queued_job"], ".1f"),
                 _n(e["ratio_to_raw"], ".2f"), f"≤ {e['raw_target']:g}", _verdict(e["raw_pass"]),
                 "; ".join(f"{k['key'].split('}')[-1] or k['key']} {k['type']} {k['length']} {k['bytes']}"
                           for k in e.get("keys_after_drain") or [])]
                for e in by("memory") if e.get("keys_after_drain") is not None
            ],
        )  # fmt: skip
        lines.append("")
    if by("scale"):
        lines += ["### Cost per operation at growing queue depth (median µs per op)", ""]
        lines += _table(
            ["backend", "N", "load jobs/s", *SCALE_OPS, "target", "result"],
            [
                [e["backend"], " / ".join(f"{s:,}" for s in e["sizes"]),
                 " / ".join(_n(r) for r in e["load_jobs_per_s"]),
                 *[" / ".join(_n(x, ".0f") for x in e["us_per_op"][op]) + f" (x{_n(e['ratio'][op], '.2f')})"
                   for op in SCALE_OPS],
                 f"≤ x{e['target']:g}", _verdict(e["pass"])]
                for e in by("scale")
            ],
        )  # fmt: skip
        lines.append("")
        lines += [f"- {e['backend']}: no figure for {x}" for e in by("scale") for x in e.get("errors", [])]
        lines.append("")
    if by("linear"):
        lines += ["### Linear cost: end to end at growing N", ""]
        lines += _table(
            ["backend", "N", "jobs/s", "spread", "target", "result", "client µs/job", "server µs/job"],
            [
                [e["backend"], " / ".join(f"{s:,}" for s in e["sizes"]),
                 " / ".join(_n(r) for r in e["jobs_per_s"]), f"{e['spread']:.1%}",
                 f"≤ {e['target']:.0%}", _verdict(e["pass"]),
                 " / ".join(_n(r, ".1f") for r in e.get("client_cpu_us_per_job", [])),
                 " / ".join(_n(r, ".1f") for r in e.get("server_cpu_us_per_job", []))]
                for e in by("linear")
            ],
        )  # fmt: skip
        lines.append("")
    notes = [e for e in entries if e.get("kind") in ("skip", "error")] + [
        e for e in by("throughput") if e.get("notes")
    ]
    if notes:
        lines += ["### Skipped, failed, notes", ""]
        for e in notes:
            what = e.get("reason") or e.get("error") or "; ".join(e.get("notes", []))
            lines.append(f"- {e.get('kind')}: {e['backend']} {e.get('scenario') or ''}: {what}")
        lines.append("")
    return "\n".join(lines)
