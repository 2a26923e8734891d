"""The run directory: what a run is, and each finished task's result, saved as it completes.

A run of an experiment with a given config lives in
``OUT/runs/<name>-<fingerprint>/``, the fingerprint being a hash of what
defines the run (the experiment's name, its config, its number of tasks):

    run.json            the record: experiment, config, task count, versions, creation time
    task-00007.json     one finished task: its parameters, result, wall and CPU time
    task-00007.error.txt  the traceback of a task that failed (removed once it succeeds)

Every file is written atomically, so a sweep killed at any moment leaves
only whole files, and rerunning the same command finds the finished tasks and
runs the rest. A different config has a different fingerprint, so it starts a
fresh run in its own directory (and switching back resumes the old one). A
directory whose run.json describes another run is refused rather than mixed:
that happens only if files were copied or edited by hand.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from pathlib import Path
from typing import Any

from tinygrad_bn._io import atomic_write_bytes
from tinygrad_bn.experiments.records import fingerprint, json_safe, write_json

STORE_FORMAT = 1  # bumped whenever the layout of run.json or the task files changes


class RunStore:
    """One run's directory: its record and its finished tasks."""

    def __init__(self, path: Path, record: dict[str, Any], run_id: str) -> None:
        self.path = path
        self.record = record
        self.run_id = run_id
        self.n_tasks = int(record["tasks"])
        self.warnings: list[str] = []  # task files that could not be used (they run again)

    @classmethod
    def open(cls, out_dir: Path, name: str, record: dict[str, Any]) -> RunStore:
        """The directory of the run `record` under `out_dir`, created or checked."""
        if not isinstance(record.get("tasks"), int):
            raise ValueError(f"a run record needs its number of tasks, got {record.get('tasks')!r}")
        record = json_safe(record)
        run_id = fingerprint({"format": STORE_FORMAT, **record})
        path = Path(out_dir) / "runs" / f"{name}-{run_id}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileNotFoundError(f"cannot create the run directory {str(path)!r}: {err}") from None
        run_file = path / "run.json"
        if run_file.exists():
            stored = _read_json(run_file)
            if stored is None or stored.get("format") != STORE_FORMAT or stored.get("record") != record:
                raise ValueError(
                    f"{str(path)!r} holds a different run than this one (its run.json does not "
                    "match this config); refusing to mix their results: move or delete that "
                    "directory, or use another --out"
                )
        else:
            write_json(run_file, {"format": STORE_FORMAT, "run": run_id, "record": record,
                                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                  "versions": _versions()})
        return cls(path, record, run_id)

    def task_file(self, key: int) -> Path:
        """Where task `key`'s result goes."""
        return self.path / f"task-{key:05d}.json"

    def finished(self) -> dict[int, Any]:
        """The results of the tasks already done, by task key (JSON form)."""
        done: dict[int, Any] = {}
        self.warnings = []
        for file in sorted(self.path.glob("task-*.json")):
            payload = _read_json(file)
            problem = self._problem(file, payload)
            if problem:
                self.warnings.append(f"ignoring {file}: {problem}; that task runs again")
                continue
            done[payload["task"]] = payload["result"]
        return done

    def _problem(self, file: Path, payload: Any) -> str | None:
        if not isinstance(payload, dict):
            return "not a JSON object (damaged?)"
        if payload.get("format") != STORE_FORMAT or payload.get("run") != self.run_id:
            return "written by another run or version"
        key = payload.get("task")
        if not isinstance(key, int) or not 0 <= key < self.n_tasks or file != self.task_file(key):
            return f"task number {key!r} does not fit this run of {self.n_tasks} tasks"
        if "result" not in payload:
            return "no result in it"
        return None

    def save(self, key: int, params: dict[str, Any], result: Any, seconds: float,
             cpu_seconds: float = 0.0) -> Path:
        """Write task `key`'s result atomically (and drop an earlier failure's traceback)."""
        path = write_json(self.task_file(key), {
            "format": STORE_FORMAT, "run": self.run_id, "task": key, "params": params,
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), "result": result,
        })
        self.error_file(key).unlink(missing_ok=True)
        return path

    def error_file(self, key: int) -> Path:
        """Where the traceback of task `key`'s last failure goes."""
        return self.path / f"task-{key:05d}.error.txt"

    def save_failure(self, key: int, params: dict[str, Any], error: str, details: str) -> Path:
        """Keep the traceback of a failed task for whoever debugs it."""
        text = f"task {key} {json.dumps(json_safe(params))}\n{error}\n\n{details}"
        return atomic_write_bytes(self.error_file(key), text.encode())


def _read_json(path: Path) -> Any:
    """The parsed file, or None if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _versions() -> dict[str, str]:
    """The versions that can change results in their last bits (recorded, not compared)."""
    versions = {"python": platform.python_version()}
    for package in ("tinygrad_bn", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
