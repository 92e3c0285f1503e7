"""The click command tree. Each command parses its options and hands off to a module function."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click

from queuestore.cli import _dlq, _inspect, _migrate, _tools
from queuestore.cli._output import Out
from queuestore.cli._run import execute
from queuestore.cli._target import CONFIG_ENV, Target, UsageError

__all__ = ["cli", "run"]

F = TypeVar("F", bound=Callable[..., Any])


def target_options(func: F) -> F:
    """Add ``--config``, ``--url``, ``--type``, ``--queue`` and ``--json`` to a command."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            envvar=CONFIG_ENV,
            show_envvar=True,
            help="YAML config (default: $QUEUESTORE_CONFIG, else ./storage.yaml).",
        ),
        click.option("--url", help="Use one backend at this URL instead of a config file."),
        click.option("--type", "backend_type", help="Backend type for --url (default: redis-lists)."),
        click.option("--queue", "queue_option", help="Queue for --url/--type mode."),
        click.option("--json", "as_json", is_flag=True, help="Write JSON instead of tables."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _target(kw: dict[str, Any]) -> tuple[Target, Out]:
    target = Target(
        config=kw.pop("config_file"),
        url=kw.pop("url"),
        type=kw.pop("backend_type"),
        queue=kw.pop("queue_option"),
    )
    return target, Out(json=kw.pop("as_json"))


def _finish(code: int) -> None:
    if code:
        raise SystemExit(code)


def _go(out: Out, make: Callable[[], Awaitable[int]]) -> None:
    _finish(execute(out, make))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="queuestore")
def cli() -> None:
    """queuestore: inspect queues, check health, watch stats and migrate queues between backends.

    Every command reads a YAML config (--config, $QUEUESTORE_CONFIG or ./storage.yaml) or one
    backend given with --url/--type/--queue, and writes tables or, with --json, JSON.
    """


@cli.group("config")
def config_group() -> None:
    """Check a configuration file."""


@config_group.command("validate")
@target_options
def config_validate(**kw: Any) -> None:
    """Load, default and validate the config; errors name the field path (exit 2)."""
    target, out = _target(kw)

    async def go() -> int:
        return _inspect.validate_config(target, out)

    _go(out, go)


@cli.command("backends")
@target_options
def backends_cmd(**kw: Any) -> None:
    """Backend types, and each configured backend's capabilities as probed on its server."""
    target, out = _target(kw)
    try:
        target.config_path()
        connect = True
    except UsageError:
        connect = False
    _go(out, functools.partial(_inspect.backends, target, out, connect=connect))


@cli.command("health")
@click.argument("queue", required=False)
@target_options
def health_cmd(queue: str | None, **kw: Any) -> None:
    """Health of every configured queue's backend (or QUEUE's); exit 1 if any is unhealthy."""
    target, out = _target(kw)
    _go(out, functools.partial(_inspect.health, target, out, queue))


@cli.command("stats")
@click.argument("queue", required=False)
@click.option("--watch", is_flag=True, help="Repeat every --interval seconds until interrupted (or --count).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between rounds.",
)
@click.option("--count", type=click.IntRange(min=1), help="With --watch: stop after this many rounds.")
@click.option(
    "--prometheus", is_flag=True, help="Print the Prometheus text exposition once (prometheus extra)."
)
@target_options
def stats_cmd(
    queue: str | None, watch: bool, interval: float, count: int | None, prometheus: bool, **kw: Any
) -> None:
    """Depths by state, rates and errors of every configured queue (or QUEUE)."""
    target, out = _target(kw)
    if prometheus:
        _go(out, functools.partial(_inspect.prometheus_text, target, out, queue))
        return
    rounds = (count or None) if watch else 1
    _go(out, functools.partial(_inspect.stats, target, out, queue, interval=interval, rounds=rounds))


@cli.command("peek")
@click.argument("queue")
@click.option(
    "-n", "count", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many jobs."
)
@target_options
def peek_cmd(queue: str, count: int, **kw: Any) -> None:
    """The next N jobs QUEUE would hand out (nothing is leased)."""
    target, out = _target(kw)
    _go(out, functools.partial(_inspect.peek, target, out, queue, count))


@cli.command("jobs")
@click.argument("queue")
@click.option(
    "--state", type=click.Choice(sorted(_inspect.STATES)), required=True, help="Which jobs to list."
)
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="At most this many."
)
@target_options
def jobs_cmd(queue: str, state: str, limit: int, **kw: Any) -> None:
    """List QUEUE's jobs in one state (read page by page)."""
    target, out = _target(kw)
    _go(out, functools.partial(_inspect.jobs, target, out, queue, state, limit))


@cli.group("migrate")
def migrate_group() -> None:
    """Move a live queue to another backend: plan, run, status, cancel."""


_BATCH = click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Jobs per step."
)
_TO = click.option(
    "--to", "to", required=True, help="Target: a backend name from the config, or a backend type."
)


@migrate_group.command("plan")
@click.argument("queue")
@_TO
@_BATCH
@target_options
def migrate_plan(queue: str, to: str, batch_size: int, **kw: Any) -> None:
    """What migrating QUEUE to the target would move, and how long it would take. Changes nothing."""
    target, out = _target(kw)
    _go(out, functools.partial(_migrate.plan, target, out, queue, to, batch_size))


@migrate_group.command("run")
@click.argument("queue")
@_TO
@click.option("--dry-run", is_flag=True, help="Change nothing; report what would move.")
@_BATCH
@click.option("--no-verify", is_flag=True, help="Skip comparing ids and checksums before switching.")
@target_options
def migrate_run(queue: str, to: str, dry_run: bool, batch_size: int, no_verify: bool, **kw: Any) -> None:
    """Migrate QUEUE with a progress bar. Ctrl-C cancels cleanly; running it again resumes."""
    target, out = _target(kw)
    _go(
        out,
        functools.partial(
            _migrate.run, target, out, queue, to, dry_run=dry_run, batch_size=batch_size, verify=not no_verify
        ),
    )


@migrate_group.command("status")
@click.argument("queue")
@click.option("--watch", is_flag=True, help="Repeat until the migration is no longer running.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between rounds.",
)
@target_options
def migrate_status(queue: str, watch: bool, interval: float, **kw: Any) -> None:
    """The migration of QUEUE that `migrate run` recorded on this machine."""
    _, out = _target(kw)
    _go(out, functools.partial(_migrate.status, out, queue, watch=interval if watch else None))


@migrate_group.command("cancel")
@click.argument("queue")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True, help="Seconds to wait."
)
@target_options
def migrate_cancel(queue: str, timeout: float, **kw: Any) -> None:
    """Cancel QUEUE's running `migrate run` (on this machine) and wait until it has stopped."""
    _, out = _target(kw)
    _go(out, functools.partial(_migrate.cancel, out, queue, wait_seconds=timeout))


@cli.group("dlq")
def dlq_group() -> None:
    """Dead letters: redrive them (back to ready), or purge jobs of a state."""


_IDS = click.option("--id", "ids", multiple=True, metavar="ID", help="A job id (repeatable).")


@dlq_group.command("redrive")
@click.argument("queue")
@_IDS
@click.option("--all", "every", is_flag=True, help="Every dead job of QUEUE (walked in bounded pages).")
@click.option("--to", "to", help="Redrive into this queue instead (it must be on the same backend).")
@target_options
def dlq_redrive(queue: str, ids: tuple[str, ...], every: bool, to: str | None, **kw: Any) -> None:
    """Dead jobs of QUEUE back to ready (retry count 0, attempt history kept), at the back."""
    target, out = _target(kw)
    _go(out, lambda: _dlq.redrive(target, out, queue, _dlq.selection(ids, every), to))


@dlq_group.command("purge")
@click.argument("queue")
@click.option(
    "--state",
    type=click.Choice(list(_dlq.PURGE_STATES)),
    default="dead",
    show_default=True,
    help="Which jobs to remove.",
)
@_IDS
@click.option("--all", "every", is_flag=True, help="Every job of QUEUE in that state.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@target_options
def dlq_purge(queue: str, state: str, ids: tuple[str, ...], every: bool, yes: bool, **kw: Any) -> None:
    """Remove jobs of QUEUE in one state for good; asks first unless --yes (declined: exit 1)."""
    target, out = _target(kw)
    _go(out, lambda: _dlq.purge(target, out, queue, state, _dlq.selection(ids, every), yes=yes))


@cli.command("demo")
@click.option("--jobs", type=click.IntRange(min=1), default=12, show_default=True, help="Jobs to enqueue.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=3, show_default=True, help="Concurrent workers."
)
@target_options
def demo_cmd(jobs: int, workers: int, **kw: Any) -> None:
    """Enqueue, process with concurrent workers, dead-letter a poison job, print stats.

    Runs on --url/--type when given, else on $QUEUESTORE_URL, else a throwaway local
    redis-server, else the in-process memory backend; it says which.
    """
    target, out = _target(kw)
    _go(out, functools.partial(_tools.demo, target, out, jobs, workers))


@cli.command("bench")
@click.option("--backend", help="Backend name from the config (default: --queue's, else the default).")
@click.option(
    "--jobs", type=click.IntRange(1, 1_000_000), default=2000, show_default=True, help="Jobs to move."
)
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Jobs per batch call."
)
@click.option(
    "--size", type=click.IntRange(0, 1_000_000), default=64, show_default=True, help="Payload bytes."
)
@target_options
def bench_cmd(backend: str | None, jobs: int, batch: int, size: int, **kw: Any) -> None:
    """Enqueue, then dequeue and ack, on a fresh bench-* queue; print jobs/s per phase."""
    target, out = _target(kw)
    _go(out, functools.partial(_tools.bench, target, out, backend=backend, jobs=jobs, batch=batch, size=size))


def run(argv: Sequence[str]) -> int:
    """Run the command line ``argv``; return the exit code."""
    try:
        result = cli.main(args=list(argv), prog_name="queuestore", standalone_mode=False)
    except click.ClickException as exc:  # usage errors: message and exit code 2
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 130
    except SystemExit as stop:  # a command's exit code (see _finish)
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return result if isinstance(result, int) else 0  # --help and --version return 0
