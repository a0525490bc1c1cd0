"""`run(coro)`: asyncio.run that also works when this thread already runs an event loop (the browser tests' session
fixture keeps Playwright's loop running in the main thread, so a later `asyncio.run` there would be refused)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=target, name="test-asyncio-run")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
