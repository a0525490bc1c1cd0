"""A test that takes the `where` fixture runs twice: as written (its transport calls wait by blocking) and as one
call on an event loop (core.event_loop, as the gateway runs the engine's calls), where every wait of the transport
hands the loop back."""

from __future__ import annotations

import pytest

from core import event_loop
from tests.support.aio import run

ON_LOOP = "on the event loop"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.funcargs.get("where") != ON_LOOP:
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def body() -> None:
        assert not event_loop.on_loop()
        await event_loop.run(pyfuncitem.obj, **kwargs)

    run(body())
    return True
