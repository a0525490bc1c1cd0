"""Shared page plumbing: the cached engine runtime and the signed-in person. No SQL, HTTP or money math here."""

from __future__ import annotations

import streamlit as st

from core.config import load_settings
from core.runtime import Runtime


@st.cache_resource(show_spinner=False)
def _runtime(database_url: str, analytics_path: str) -> Runtime:
    rt = Runtime(load_settings())
    rt.init()
    return rt


def runtime() -> Runtime:
    """The engine for the configured database (one per database URL, shared by every session)."""
    settings = load_settings()
    return _runtime(settings.database_url, str(settings.analytics_path))


def coming_soon(what: str, issue: int) -> None:
    st.info(f"**Coming in this release.** {what} (tracked in issue #{issue}). Nothing on this page is simulated.")


def money(usd: object) -> str:
    from decimal import Decimal

    d = Decimal(str(usd))
    return f"${d:,.2f}" if abs(d) >= 1 else f"${d:,.4f}"
