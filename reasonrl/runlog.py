"""The one place that prints, shows progress and writes into a run directory.

Only rank 0 prints or writes, so multi-process training needs no changes in the stages.
Library code that has no Run at hand uses `Run.null()` (prints nothing, writes nothing).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from reasonrl.ranks import is_main_process


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Run:
    """A run directory plus rank-aware console output.

    `run_dir=None` gives console output only (nothing written).
    """

    def __init__(self, run_dir: str | os.PathLike | None, *, quiet: bool = False, stage: str | None = None,
                 sinks: Sequence[Any] = ()):
        self.dir = Path(run_dir) if run_dir is not None else None
        self.sinks = list(sinks)  # optional copies of metric rows (reasonrl.runlog_sinks): .log(row), .close()
        self.quiet = quiet
        self.stage = stage
        self.is_main = is_main_process()
        self._console = None  # the directory itself is created by the first write, not here

    @classmethod
    def null(cls) -> "Run":
        return cls(None, quiet=True)

    # ---- console -------------------------------------------------------------------------
    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, quiet=self.quiet or not self.is_main)
        return self._console

    def print(self, *parts: Any, **kwargs: Any) -> None:
        if self.is_main and not self.quiet:
            self.console.print(*parts, **kwargs)

    def warn(self, message: str) -> None:
        if self.is_main:  # soft wrap: one warning stays one line in a log file, whatever its length
            from rich.markup import escape  # the message is plain text: a "[/path]" in it is no markup tag

            self.console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)

    @contextmanager
    def progress(self, total: int | None, description: str) -> Iterator["ProgressTask"]:
        """A rich progress bar with ETA; `task.advance(n, **fields)` shows live numbers."""
        if not self.is_main or self.quiet:
            yield ProgressTask(None, None)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        with Progress(*columns, console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total, info="")
            yield ProgressTask(progress, task_id)

    # ---- run directory ---------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        if self.dir is None:
            raise RuntimeError("this Run has no directory")
        return self.dir.joinpath(*parts)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        row = {k: _jsonable(v) for k, v in metrics.items()}
        if self.stage is not None:
            row.setdefault("stage", self.stage)
        self._append_jsonl("metrics.jsonl", row)
        if self.is_main:
            for sink in self.sinks:
                sink.log(row)

    def close(self) -> None:
        """Flush and close the sinks (metrics.jsonl needs nothing: every row is written at once)."""
        for sink in self.sinks:
            sink.close()

    def log_samples(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._append_jsonl("samples.jsonl", {k: _jsonable(v) for k, v in row.items()})

    def write_text(self, name: str, text: str) -> None:
        """Atomic write (temp file + rename), so a crash never leaves half a file."""
        if self.dir is None or not self.is_main:
            return
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)

    def write_json(self, name: str, obj: Any) -> None:
        self.write_text(name, json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def write_environment(self) -> None:
        """Record what produced this run: package, git commit, library versions."""
        self.write_json("environment.json", environment_info())

    def truncate_logs_after(self, step: int) -> None:
        """On (re)start, drop log rows from steps after the checkpoint (all of them without one) so
        every step appears once; a torn last line from a crash mid-write is dropped too."""
        if self.dir is None or not self.is_main:
            return
        for name in ("metrics.jsonl", "samples.jsonl"):
            path = self.path(name)
            if not path.exists():
                continue
            kept = [line for line, row in _rows(path) if row.get("step", 0) <= step]
            self.write_text(name, "".join(line + "\n" for line in kept))

    def last_metrics(self) -> dict[str, Any]:
        """The last complete row of metrics.jsonl ({} when there is none)."""
        path = self.path("metrics.jsonl") if self.dir is not None else None
        rows = [row for _, row in _rows(path)] if path is not None and path.exists() else []
        return rows[-1] if rows else {}

    def _append_jsonl(self, name: str, row: dict[str, Any]) -> None:
        if self.dir is None or not self.is_main:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path(name), "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, parsed row) for every well-formed JSON object line of a JSONL log."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            out.append((line, row))
    return out


class ProgressTask:
    def __init__(self, progress, task_id):
        self._progress, self._task_id = progress, task_id

    def advance(self, n: int = 1, **fields: Any) -> None:
        if self._progress is None:
            return
        info = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        self._progress.update(self._task_id, advance=n, info=info)


def environment_info() -> dict[str, Any]:
    import reasonrl

    info: dict[str, Any] = {"reasonrl": reasonrl.__version__, "python": platform.python_version(),
                            "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for name in ("torch", "transformers"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    info["git_commit"] = _git_commit()
    return info


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
