"""The routes' worker threads (`in_thread`): a route runs off the event loop with the caller's context variables, its
result or error comes back to the caller, and a caller cancelled while the route runs waits for it to end (the call
may be charging), as FastAPI's own thread pool did."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from core.gateway.threads import in_thread
from tests.support.aio import run

WHO = contextvars.ContextVar("who", default="nobody")


def test_a_route_runs_in_a_worker_thread_with_the_callers_context() -> None:
    @in_thread
    def route(x: int) -> tuple[int, str, bool]:
        return x * 2, WHO.get(), threading.current_thread() is threading.main_thread()

    async def call() -> tuple[int, str, bool]:
        WHO.set("alice")
        return await route(21)

    assert run(call()) == (42, "alice", False)


def test_a_routes_error_reaches_the_caller() -> None:
    @in_thread
    def route() -> None:
        raise LookupError("no such model")

    with pytest.raises(LookupError, match="no such model"):
        run(route())


def test_a_cancelled_caller_waits_for_the_running_route() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    @in_thread
    def route() -> None:
        started.set()
        release.wait(10)
        finished.set()

    async def cancel_while_running() -> bool:
        task = asyncio.ensure_future(route())
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.05)
        waiting = not task.done()  # still waiting for the route's thread
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return waiting

    assert run(cancel_while_running()) is True
    assert finished.is_set()


def test_with_routes_on_the_loop_a_route_runs_on_the_loops_thread_with_the_callers_context() -> None:
    from core import event_loop
    from core.gateway.threads import ROUTES_ON_LOOP

    @in_thread
    def route(x: int) -> tuple[int, str, bool, int]:
        return x * 2, WHO.get(), event_loop.on_loop(), threading.get_ident()

    async def call() -> tuple[tuple[int, str, bool, int], int]:
        WHO.set("bob")
        ROUTES_ON_LOOP.set(True)
        return await route(21), threading.get_ident()

    (doubled, who, on_loop, thread), loop_thread = run(call())
    assert (doubled, who, on_loop) == (42, "bob", True) and thread == loop_thread
