"""How a task's function runs: on the loop, in a thread, or in a child process.

Each has its own timeout semantics, because each can stop work differently: a coroutine is cancelled,
a thread cannot be stopped (its job is failed and its late result ignored), a process is killed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from qaio.context import JobContext, _current
from qaio.errors import QaioError, TaskTimeout

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


class TaskError(QaioError):
    """A task failed in a child process; carries the child's formatted traceback."""

    def __init__(self, message: str, formatted: str) -> None:
        super().__init__(message)
        self.formatted = formatted


async def run_async(fn: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float | None) -> Any:
    if timeout is None:
        return await fn(**kwargs)
    try:
        return await asyncio.wait_for(fn(**kwargs), timeout)
    except asyncio.TimeoutError:
        raise TaskTimeout(f"timed out after {timeout} s (cancelled)") from None


THREAD_PREFIX = "qaio-task"


def task_threads() -> list[threading.Thread]:
    """The live threads of every ThreadExecutor of this process."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


class ThreadExecutor:
    """Sync tasks in a thread pool sized to the worker's concurrency, plus one thread for each call that
    still runs past its timeout (a thread cannot be stopped)."""

    def __init__(self, size: int) -> None:
        self._pool = ThreadPoolExecutor(size, thread_name_prefix=THREAD_PREFIX)
        self._resizing = threading.Lock()  # _abandon runs on the loop, _give_back in the ending thread

    async def run(self, fn: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float | None) -> Any:
        loop = asyncio.get_running_loop()
        # copy_context carries the job context (report_progress) into the thread.
        call = functools.partial(contextvars.copy_context().run, fn, **kwargs)
        if timeout is None:
            return await loop.run_in_executor(self._pool, call)
        started = self._pool.submit(call)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(started, loop=loop), timeout)
        except asyncio.TimeoutError:
            if not started.done():
                self._abandon(started)
            raise TaskTimeout(f"timed out after {timeout} s (the thread's late result is ignored)") from None

    def _abandon(self, running: Future[Any]) -> None:
        """The timed-out call keeps its thread: the pool gets one more until it returns, or the next jobs
        would wait behind it (and time out without having started). ThreadPoolExecutor has no public
        way to resize; it reads `_max_workers` each time it decides whether to start a thread."""
        with self._resizing:
            self._pool._max_workers += 1
        running.add_done_callback(self._give_back)

    def _give_back(self, _: Future[Any]) -> None:
        with self._resizing:
            self._pool._max_workers -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ProcessExecutor:
    """CPU-bound tasks in child processes. Each child imports the app and runs one job at a time;
    a child whose job times out or is cancelled is killed and replaced."""

    def __init__(self, size: int, app_ref: str) -> None:
        import multiprocessing  # here, not at the top: a worker without process tasks saves its ~0.8 MiB

        self._size = size
        self._app_ref = app_ref
        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Child] | None = None
        self._children: list[_Child] = []

    async def _start(self) -> asyncio.Queue[_Child]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(self._spawn())
        return self._idle

    def _spawn(self) -> _Child:
        parent, child_end = self._context.Pipe()
        process = self._context.Process(target=_child_main, args=(self._app_ref, child_end), daemon=True)
        process.start()
        child_end.close()
        child = _Child(process, parent)
        self._children.append(child)
        return child

    async def run(self, task_name: str, kwargs: Mapping[str, Any], timeout: float | None) -> Any:
        idle = await self._start()
        child = await idle.get()
        context = _current.get()
        try:
            job = (context.job_id, context.attempt, context.queue) if context else ("", 1, "")
            child.conn.send((task_name, kwargs, job))
            reply = await asyncio.wait_for(child.replies(context), timeout)
        except BaseException as exc:  # timeout, cancellation, a dead child: the child cannot be trusted
            self._replace(child)
            if isinstance(exc, asyncio.TimeoutError):
                raise TaskTimeout(f"timed out after {timeout} s (process killed)") from None
            raise
        idle.put_nowait(child)
        kind, payload = reply
        if kind == "ok":
            return payload
        raise TaskError(payload[0], payload[1])

    def _replace(self, child: _Child) -> None:
        child.kill()
        self._children.remove(child)
        if self._idle is not None:
            self._idle.put_nowait(self._spawn())

    def shutdown(self) -> None:
        for child in self._children:
            child.kill()
        self._children.clear()


class _Child:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    async def replies(self, context: JobContext | None) -> tuple[str, Any]:
        """Read the child's messages until its outcome; progress reports are passed on as they come."""
        loop = asyncio.get_running_loop()
        while True:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.conn.fileno(), _resolve, readable)
            try:
                await readable
            finally:
                loop.remove_reader(self.conn.fileno())
            try:
                kind, payload = self.conn.recv()
            except EOFError:
                raise QaioError(f"task process {self.process.pid} died") from None
            if kind != "progress":
                return kind, payload
            if context is not None:
                context.report(*payload)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _child_main(app_ref: str, conn: Connection) -> None:
    """A child's loop: receive (task, kwargs), run the task's function, send the outcome."""
    from qaio.context import JobContext
    from qaio.loader import load_app

    app = load_app(app_ref)

    def sink(job_id: str, progress: float, message: str | None) -> None:
        conn.send(("progress", (progress, message)))

    while True:
        try:
            task_name, kwargs, (job_id, attempt, queue) = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        token = _current.set(JobContext(job_id, task_name, attempt, queue, sink))
        try:
            conn.send(("ok", app.tasks[task_name].fn(**kwargs)))
        except Exception as exc:
            conn.send(("error", (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
        finally:
            _current.reset(token)
