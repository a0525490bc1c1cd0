"""Every page runs inside one error boundary: an engine error shows as its sentence, anything else as a short line
with a log reference, never as a stack trace; st.stop and st.rerun pass through."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def engine_error() -> None:
    from core.errors import InvalidInputError
    from pages.ui import error_boundary

    with error_boundary():
        raise InvalidInputError("input_per_1m_usd: 1e400 is too large; a price must be below $1,000,000,000.")


def unexpected_error() -> None:
    from pages.ui import error_boundary

    with error_boundary():
        raise RuntimeError("connection to /srv/secret/app.db lost")


def stopped() -> None:
    import streamlit as st

    from pages.ui import error_boundary

    with error_boundary():
        st.write("before")
        st.stop()
    st.write("after")


def test_an_engine_error_shows_its_sentence_once_and_no_trace() -> None:
    at = AppTest.from_function(engine_error).run()
    assert not at.exception
    [error] = at.error
    assert "too large" in error.value and "1,000,000,000" in error.value
    assert "Traceback" not in error.value


def test_an_unexpected_error_shows_a_reference_not_its_message(caplog: pytest.LogCaptureFixture) -> None:
    at = AppTest.from_function(unexpected_error).run()
    assert not at.exception
    [error] = at.error
    assert "Something went wrong" in error.value and "ref " in error.value
    assert "/srv/secret" not in error.value and "RuntimeError" not in error.value
    ref = error.value.split("ref ")[1][:6]
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records), "the log has the reference and trace"


def test_st_stop_passes_through_the_boundary() -> None:
    at = AppTest.from_function(stopped).run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["before"]
