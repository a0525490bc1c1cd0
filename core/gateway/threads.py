"""The worker threads the routes run in (the engine is synchronous: one call in flight per thread), GATEWAY_THREADS of
them per process. A route is a plain function made awaitable by `in_thread`, which hands it to a
`ThreadPoolExecutor` instead of FastAPI's `run_in_threadpool` (anyio's `to_thread.run_sync`): anyio's hand-off took
about 60 µs of CPU per call, the executor's about 20 (measured with 16 concurrent callers), on the event loop most
gateway calls queue behind."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

# enough for many concurrent calls per process (each holds its thread for its whole upstream call)
THREADS = 128

P = ParamSpec("P")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """This process's route threads (made at the first call, each thread when first needed)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                size = int(os.environ.get("GATEWAY_THREADS", THREADS))
                _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="gateway")
    return _pool


def in_thread(route: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`route` as a coroutine function that runs it in a route thread (with the caller's context variables), for
    FastAPI: it reads the parameters (and so the OpenAPI schema) through `functools.wraps`. As with
    `run_in_threadpool`, a cancelled caller still waits for the call to end: the call may be charging."""

    @functools.wraps(route)
    async def threaded(*args: P.args, **kwargs: P.kwargs) -> R:
        context = contextvars.copy_context()
        future: Future[R] = pool().submit(context.run, route, *args, **kwargs)  # type: ignore[arg-type]
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # not started: cancelled with the caller; running: cannot be, so it is waited for, as anyio's is
            while not future.done():
                try:
                    await asyncio.wrap_future(future)
                except asyncio.CancelledError:
                    continue
                except BaseException:  # the caller was cancelled: that is what it sees
                    break
            raise

    return threaded
