"""A persistent pool of reward worker processes with a wall-clock timeout on every call.

Jobs go to workers in chunks (one pipe message per chunk, one answer per job), and the pool
knows when each job started: when the previous answer arrived. A job past its timeout gets its
worker SIGKILLed and replaced; the rest of that chunk is re-queued. A worker that dies turns its
current job into an error the same way. Nothing here raises on a verifier's behaviour.

Workers start with `forkserver` (default on Linux) or `spawn`, never plain fork: the trainer
holds torch's thread pools, and forking a multi-threaded process can deadlock the child.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import time

from reasonrl.rewards.procs import kill_descendants
from reasonrl.rewards.worker import worker_main

PRELOAD = ("reasonrl.rewards.worker", "reasonrl.rewards.answers", "math_verify")


class _Worker:
    def __init__(self, ctx, warm: list):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, warm), daemon=True,
                                name="reasonrl-reward-worker")
        try:
            self.proc.start()
        except BaseException:  # e.g. the forkserver died: leave no pipe behind
            self.conn.close()
            raise
        finally:
            child.close()
        self.ready = False
        self.spawned = time.monotonic()
        self.pending: collections.deque = collections.deque()  # (job_id, timeout_s, job)
        self.started = 0.0  # when the first pending job started

    def deadline(self, startup_timeout: float) -> float | None:
        if not self.ready:
            return self.spawned + startup_timeout
        return self.started + self.pending[0][1] if self.pending else None

    def kill(self) -> None:
        if self.proc.pid is not None:  # the worker and anything its verifiers started
            kill_descendants(self.proc.pid, include_self=True)
        self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class WorkerPool:
    def __init__(self, num_workers: int, warm: list, start_method: str = "forkserver",
                 startup_timeout: float = 120.0):
        if start_method == "fork":
            raise ValueError("reward workers must not be forked from the trainer (torch threads); "
                             "use 'forkserver' or 'spawn'")
        if start_method not in multiprocessing.get_all_start_methods():
            start_method = "spawn"  # e.g. Windows has no forkserver
        self.ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self.ctx.set_forkserver_preload(list(PRELOAD))
        self.warm = warm
        self.startup_timeout = startup_timeout
        self.size = num_workers
        self.restarts = 0
        self.start_error: str | None = None
        self.workers: list[_Worker] = []
        self._top_up()

    def _start(self) -> _Worker | None:
        """A new worker, or None (reason in start_error). A forkserver that died under us
        (killed, or reaped by someone else) cannot be relied on again: fall back to spawn."""
        for _ in range(2):
            try:
                return _Worker(self.ctx, self.warm)
            except Exception as exc:  # EOFError, ChildProcessError, OSError ...
                self.start_error = f"{type(exc).__name__}: {exc}"[:300]
                if self.ctx.get_start_method() != "spawn":
                    self.ctx = multiprocessing.get_context("spawn")
        return None

    def _top_up(self) -> None:
        while len(self.workers) < self.size:
            worker = self._start()
            if worker is None:
                return
            self.workers.append(worker)

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker.proc.join(timeout=2)
            if worker.proc.is_alive():
                worker.kill()
        self.workers = []

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)
        self.restarts += 1
        self._top_up()

    def run(self, jobs: list[tuple], chunk: int | None = None) -> dict:
        """jobs: (job_id, timeout_s, (verifier, completion, example)) -> {job_id: result}."""
        self._top_up()
        chunk = chunk or max(1, min(64, len(jobs) // (4 * max(1, len(self.workers))) or 1))
        queue = collections.deque(jobs[i:i + chunk] for i in range(0, len(jobs), chunk))
        results: dict = {}
        while len(results) < len(jobs):
            if not self.workers:  # none could be started: every job left is a counted error
                for batch in queue:
                    results.update({job_id: ("error", None, f"no reward worker could start "
                                             f"({self.start_error})") for job_id, _, _ in batch})
                break
            self._dispatch(queue, results)
            if len(results) < len(jobs):
                self._collect(results, queue)
        return results

    def _dispatch(self, queue: collections.deque, results: dict) -> None:
        for worker in list(self.workers):
            if worker.ready and not worker.pending and queue:
                batch = queue.popleft()
                try:
                    # pickling happens before any byte is written, so a failure leaves the
                    # pipe clean
                    worker.conn.send([(job_id, *job) for job_id, _, job in batch])
                except OSError:  # the worker died while idle: hand the batch to its successor
                    queue.appendleft(batch)
                    self._replace(worker)
                    continue
                except Exception as exc:  # an example that cannot be pickled
                    if len(batch) > 1:  # retry one by one so only the culprit fails
                        queue.extendleft([job] for job in reversed(batch))
                    else:
                        results[batch[0][0]] = ("error", None, f"cannot send to worker: {exc!r}"[:500])
                    continue
                worker.pending.extend(batch)
                worker.started = time.monotonic()

    def _collect(self, results: dict, queue: collections.deque) -> None:
        deadlines = [d for w in self.workers if (d := w.deadline(self.startup_timeout))]
        wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 1.0
        ready = multiprocessing.connection.wait([w.conn for w in self.workers], timeout=wait_s)
        for worker in [w for w in self.workers if w.conn in ready]:
            self._drain(worker, results, queue)
        now = time.monotonic()
        for worker in list(self.workers):
            deadline = worker.deadline(self.startup_timeout)
            if deadline is not None and now > deadline:
                self._expire(worker, results, queue)

    def _drain(self, worker: _Worker, results: dict, queue: collections.deque) -> None:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "ready":
                    worker.ready = True
                    continue
                job_id, status, value, reason = message
                worker.pending.popleft()
                worker.started = time.monotonic()
                results[job_id] = (status, value, reason)
        except (EOFError, OSError):
            code = worker.proc.exitcode
            self._fail_current(worker, results, queue, "error", f"worker died (exit code {code})")

    def _expire(self, worker: _Worker, results: dict, queue: collections.deque) -> None:
        if not worker.ready:
            self._fail_current(worker, results, queue, "error", "reward worker did not start")
            return
        timeout = worker.pending[0][1]
        self._fail_current(worker, results, queue, "timeout", f"exceeded {timeout:g} s")

    def _fail_current(self, worker, results, queue, status: str, reason: str) -> None:
        """Record the job the worker was on, re-queue the others, replace the worker."""
        if worker.pending:
            job_id = worker.pending.popleft()[0]
            results[job_id] = (status, None, reason)
        elif not worker.ready:
            # a worker that cannot start would stall the batch: fail what is queued
            while queue:
                for job_id, _, _ in queue.popleft():
                    results[job_id] = (status, None, reason)
        if worker.pending:
            queue.appendleft(list(worker.pending))
        self._replace(worker)
