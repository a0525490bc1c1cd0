"""Where the routes run. The engine is synchronous (one call at a time per thread or greenlet); a route is a plain
function made awaitable by `in_thread`, which runs it

- on the event loop (core.event_loop: a greenlet whose network waits and sleeps hand the loop back) when the gateway
  runs its calls there (`ROUTES_ON_LOOP`, set per request by the application: `GATEWAY_ROUTES`, by default on SQLite
  with the providers' lean transport); or
- in one of GATEWAY_THREADS worker threads of a `ThreadPoolExecutor` otherwise (PostgreSQL: a commit waits for the
  server, which on the loop would hold up every call). The executor, not FastAPI's `run_in_threadpool` (anyio's
  `to_thread.run_sync`): anyio's hand-off took about 60 µs of CPU per call, the executor's about 20 (measured with 16
  concurrent callers), on the event loop most gateway calls queue behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from core import event_loop

# enough for many concurrent calls per process (each holds its thread for its whole upstream call)
THREADS = 128

P = ParamSpec("P")
R = TypeVar("R")

# True while a request of an application that runs its calls on the event loop is served (set by `app.Gateway`)
ROUTES_ON_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("routes_on_loop", default=False)

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
    """`route` as a coroutine function that runs it on the event loop or in a route thread (see the module), with the
    caller's context variables, for FastAPI: it reads the parameters (and so the OpenAPI schema) through
    `functools.wraps`. As with `run_in_threadpool`, a cancelled caller still waits for the call to end: the call may
    be charging."""

    @functools.wraps(route)
    async def threaded(*args: P.args, **kwargs: P.kwargs) -> R:
        if ROUTES_ON_LOOP.get():
            return await event_loop.run(route, *args, **kwargs)
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
