"""core.event_loop: a synchronous call run on the event loop (a greenlet) gets its result or error back to the caller
with the caller's context variables; its waits (sleep, a socket's readiness, a connection) let the loop serve other
calls meanwhile and time out as asked; outside such a call the same functions block as usual; and a caller cancelled
while the call runs waits for it to end, as with a thread."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading

import pytest

from core import event_loop
from tests.support.aio import run

WHO = contextvars.ContextVar("who", default="nobody")


def test_a_call_runs_on_the_loops_own_thread_with_the_callers_context() -> None:
    def call(x: int) -> tuple[int, str, bool, int]:
        return x * 2, WHO.get(), event_loop.on_loop(), threading.get_ident()

    async def caller() -> tuple[tuple[int, str, bool, int], int]:
        WHO.set("alice")
        return await event_loop.run(call, 21), threading.get_ident()

    (doubled, who, on_loop, thread), loop_thread = run(caller())
    assert (doubled, who, on_loop) == (42, "alice", True) and thread == loop_thread
    assert not event_loop.on_loop()


def test_a_calls_error_reaches_the_caller() -> None:
    def call() -> None:
        raise LookupError("no such model")

    with pytest.raises(LookupError, match="no such model"):
        run(event_loop.run(call))


def test_a_sleeping_call_lets_the_others_run() -> None:
    seen: list[str] = []

    def slow() -> None:
        seen.append("slow starts")
        event_loop.sleep(0.05)
        seen.append("slow ends")

    def quick() -> None:
        seen.append("quick runs")

    async def both() -> None:
        await asyncio.gather(event_loop.run(slow), event_loop.run(quick))

    run(both())
    assert seen == ["slow starts", "quick runs", "slow ends"]


def test_a_socket_wait_wakes_on_data_and_times_out_without_it() -> None:
    mine, theirs = socket.socketpair()
    mine.setblocking(False)

    def call() -> tuple[bytes, bool]:
        asyncio.get_running_loop().call_later(0.02, theirs.send, b"x")
        event_loop.wait_readable(mine, 5.0)
        got = mine.recv(10)
        try:
            event_loop.wait_readable(mine, 0.05)  # nothing more comes
        except TimeoutError:
            return got, True
        return got, False

    try:
        assert run(event_loop.run(call)) == (b"x", True)
    finally:
        mine.close()
        theirs.close()


def test_connections_made_on_the_loop_are_non_blocking_and_a_refusal_is_an_oserror() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening, socket.socket() as bound:
        port = listening.getsockname()[1]
        bound.bind(("127.0.0.1", 0))  # bound, not listening: refused

        def call() -> float | None:
            with event_loop.connect("127.0.0.1", port, 5.0) as sock:
                timeout = sock.gettimeout()
            with pytest.raises(OSError):
                event_loop.connect("127.0.0.1", bound.getsockname()[1], 5.0)
            return timeout

        assert run(event_loop.run(call)) == 0.0
        with event_loop.connect("127.0.0.1", port, 5.0) as blocking:  # outside a call: as create_connection
            assert blocking.gettimeout() == 5.0


def test_waiting_is_refused_outside_a_call_on_the_loop() -> None:
    async def hand_back() -> None:
        await asyncio.sleep(0)

    coro = hand_back()
    with pytest.raises(RuntimeError, match=r"core\.event_loop\.run"):
        event_loop.wait(coro)
    coro.close()
    event_loop.sleep(0)  # blocks, as time.sleep


def test_a_cancelled_caller_waits_for_the_running_call() -> None:
    started, finished = threading.Event(), threading.Event()
    release: list[asyncio.Event] = []

    def call() -> None:
        started.set()
        event_loop.wait(release[0].wait())
        finished.set()

    async def cancel_while_running() -> bool:
        release.append(asyncio.Event())
        task = asyncio.ensure_future(event_loop.run(call))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.02)
        waiting = not task.done() and not finished.is_set()  # still waiting for the call, which goes on
        release[0].set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return waiting

    assert run(cancel_while_running()) is True
    assert finished.is_set()  # the call was not interrupted
