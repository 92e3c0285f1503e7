"""``migrate plan | run | status | cancel`` in this process through click's runner (not a TTY)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

from .helpers import as_json, backend_config, fill, invoke, stored_ids


def test_plan_changes_nothing(config_file: Path, queue: str) -> None:
    src = backend_config(config_file, "src", queue)
    ids = fill(src, 40)
    result = invoke(["migrate", "plan", queue, "--to", "dst", "--config", str(config_file), "--json"])
    assert result.exit_code == 0, result.output
    plan = as_json(result)
    assert (plan["job_count"], plan["source_backend"], plan["target_backend"]) == (40, "src", "dst")
    assert plan["jobs_by_state"]["ready"] == 40
    table = invoke(["migrate", "plan", queue, "--to", "dst", "--config", str(config_file)])
    assert table.exit_code == 0
    assert "estimated duration" in table.stdout
    assert sorted(stored_ids(src)) == sorted(ids)
    assert stored_ids(backend_config(config_file, "dst", queue)) == []


def test_run_shows_progress_and_moves_every_job_once(config_file: Path, queue: str) -> None:
    src, dst = backend_config(config_file, "src", queue), backend_config(config_file, "dst", queue)
    ids = fill(src, 300)
    result = invoke(
        ["migrate", "run", queue, "--to", "dst", "--batch-size", "50", "--config", str(config_file)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("progress: ")]
    phases = [line.split()[1] for line in progress]
    assert phases[0] == "validation"
    assert phases[-1] == "completed"
    assert "copying" in phases
    assert "300/300 jobs" in progress[-1]
    assert "jobs/s" in progress[-1]
    assert "eta" in progress[-1]
    assert "verified: yes" in result.stdout
    assert sorted(stored_ids(dst)) == sorted(ids)
    assert stored_ids(src) == []

    status = invoke(["migrate", "status", queue, "--json"])
    assert status.exit_code == 0, status.output
    doc = as_json(status)
    assert (doc["state"], doc["resumable"]) == ("completed", False)
    assert doc["status"]["migrated_jobs"] == 300
    assert "completed" in invoke(["migrate", "status", queue]).stdout
    # nothing is running: cancel says so
    cancel = invoke(["migrate", "cancel", queue])
    assert cancel.exit_code == 1
    assert "no running migration" in cancel.stderr


def test_run_json_prints_the_final_status_only(config_file: Path, queue: str) -> None:
    fill(backend_config(config_file, "src", queue), 20)
    result = invoke(
        ["migrate", "run", queue, "--to", "dst", "--no-verify", "--config", str(config_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    final = as_json(result)
    assert (final["phase"], final["migrated_jobs"]) == ("completed", 20)
    assert final.get("verified") is None  # --no-verify


def test_dry_run_moves_nothing_and_records_nothing(config_file: Path, queue: str) -> None:
    src, dst = backend_config(config_file, "src", queue), backend_config(config_file, "dst", queue)
    ids = fill(src, 25)
    result = invoke(
        ["migrate", "run", queue, "--to", "dst", "--dry-run", "--config", str(config_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert as_json(result)["dry_run"] is True
    assert sorted(stored_ids(src)) == sorted(ids)
    assert stored_ids(dst) == []
    status = invoke(["migrate", "status", queue])
    assert status.exit_code == 1
    assert "no migration" in status.stderr


def test_bad_migration_arguments(config_file: Path, queue: str) -> None:
    fill(backend_config(config_file, "src", queue), 3)
    base = ["--config", str(config_file)]
    zero = invoke(["migrate", "run", queue, "--to", "dst", "--batch-size", "0", *base])
    assert zero.exit_code == 2
    unknown = invoke(["migrate", "run", queue, "--to", "no-such-backend", *base])
    assert unknown.exit_code == 1
    assert "no-such-backend" in unknown.stderr
    missing_to = invoke(["migrate", "plan", queue, *base])
    assert missing_to.exit_code == 2
    not_configured = invoke(["migrate", "run", "other-queue", "--to", "dst", *base])
    assert not_configured.exit_code == 2
    assert "queues.other-queue" in not_configured.stderr


def test_unwritable_state_dir_fails_before_anything_moves(
    config_file: Path, queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst = backend_config(config_file, "src", queue), backend_config(config_file, "dst", queue)
    ids = fill(src, 10)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("QUEUESTORE_STATE_DIR", str(blocker / "state"))
    result = invoke(["migrate", "run", queue, "--to", "dst", "--config", str(config_file)])
    assert result.exit_code == 1
    assert "a-file" in result.stderr
    assert sorted(stored_ids(src)) == sorted(ids)
    assert stored_ids(dst) == []
