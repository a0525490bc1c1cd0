"""The engine's synchronous calls run on an asyncio event loop, without a thread per call: each call runs in a
greenlet of the loop's thread (as SQLAlchemy's asyncio layer runs its synchronous core), and where it would wait for
the network or sleep, it hands the loop back until the wait is over (`wait_readable`, `wait_writable`, `resolve`,
`connect`, `sleep`; a call that blocks in a library of its own goes to a thread meanwhile: `off_loop`). Everything else
it does (the ledger's SQLite statements, a few hundred microseconds) runs on the
loop as it is.

Why: the gateway ran each call in a worker thread. Under 16 concurrent calls its threads and the loop took turns for
the GIL at every statement and every socket operation, and a call waited for the GIL far longer than it worked
(benchmarks/proxy_floor.py, one SQLite worker: added p50 7.0 ms in threads against 4.3 ms on the loop, same hour).

Outside such a call (a thread, the command line, the app) every function here waits the ordinary, blocking way, so
the engine's code is the same either way. A call on the loop must never wait on a lock another call on the same
loop may hold across a wait: nothing in the engine holds a lock across a network wait or a sleep (the transport's
pool lock, the ledger writer's group lock and the key cache's lock are held for memory operations only).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import greenlet

P = ParamSpec("P")
R = TypeVar("R")


class _Call(greenlet.greenlet):
    """A greenlet running one synchronous call for `run` (its parent is the loop's own greenlet)."""


def on_loop() -> bool:
    """True inside a call started by `run` (its waits hand the event loop back)."""
    return isinstance(greenlet.getcurrent(), _Call)


def wait(awaitable: Awaitable[R]) -> R:
    """Inside a call started by `run`: the awaitable's result (or its exception), the loop serving other work
    meanwhile."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Call):
        raise RuntimeError("core.event_loop.wait is for calls started by core.event_loop.run.")
    return current.parent.switch(awaitable)  # type: ignore[union-attr, no-any-return]


async def _drive(call: _Call, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    value = call.switch(*args, **kwargs)
    while not call.dead:
        try:
            result = await value
        except BaseException as exc:  # handed to the call, which may handle it; what it raises ends the drive
            value = call.throw(exc)
        else:
            value = call.switch(result)
    return value


async def run(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` on the running loop, with the caller's context variables (a copy). As with a thread, a
    caller cancelled while the call runs still waits for it to end (it may be charging), then sees the cancellation;
    the call itself is not interrupted."""
    call = _Call(fn)
    call.gr_context = contextvars.copy_context()
    task = asyncio.ensure_future(_drive(call, args, kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        raise


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _wait_for(sock: socket.socket, timeout: float | None, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    (loop.add_writer if write else loop.add_reader)(fd, _wake, future)
    timer = loop.call_later(timeout, _expire, future) if timeout is not None else None
    try:
        wait(future)
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)
        if timer is not None:
            timer.cancel()


def wait_readable(sock: socket.socket, timeout: float | None) -> None:
    """On the loop: wait until `sock` (non-blocking) has something to read; TimeoutError after `timeout` seconds."""
    _wait_for(sock, timeout, write=False)


def wait_writable(sock: socket.socket, timeout: float | None) -> None:
    """On the loop: wait until `sock` (non-blocking) can take more bytes; TimeoutError after `timeout` seconds."""
    _wait_for(sock, timeout, write=True)


def connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected TCP socket to `host:port`, as `socket.create_connection` makes one (each address in turn; the last
    error when none answers; TimeoutError after `timeout` seconds in all), non-blocking when made on the loop."""
    if not on_loop():
        return socket.create_connection((host, port), timeout=timeout)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout

    async def resolved() -> list[Any]:
        return await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)

    error: OSError | None = None
    for family, kind, proto, _name, address in wait(resolved()):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        left = None if deadline is None else max(deadline - loop.time(), 0.0)
        try:
            wait(asyncio.wait_for(loop.sock_connect(sock, address), left))
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"{host} has no address to connect to.")


def sleep(seconds: float) -> None:
    """`time.sleep`, which on the loop serves other calls meanwhile."""
    if on_loop():
        wait(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


def off_loop(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)`, which blocks without handing the loop back (a library's own socket: Redis, whose wait can
    last its whole timeout when the server is unreachable), in a worker thread when called on the loop, the loop
    serving other calls meanwhile; called directly elsewhere."""
    if not on_loop():
        return fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return wait(loop.run_in_executor(None, functools.partial(fn, *args, **kwargs)))
