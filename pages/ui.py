"""Shared page plumbing: the cached engine runtime and the signed-in person. No SQL, HTTP or money math here."""

from __future__ import annotations

import streamlit as st

from core.config import load_settings
from core.runtime import Runtime
from core.users import UserView, list_users


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


@st.cache_data(ttl=60, show_spinner=False)
def _people() -> list[UserView]:
    with runtime().session() as s:
        return list_users(s)


def acting_user() -> UserView | None:
    """Who is acting on this page: the one seam the roles issue replaces with the signed-in identity.

    Until sign-in exists it is `st.session_state["user_email"]` when something set it, otherwise a sidebar choice
    among the users (admins and finance first). None when the database has no users yet.
    """
    people = _people()
    if not people:
        return None
    by_email = {p.email: p for p in people}
    chosen = st.session_state.get("user_email")
    if chosen not in by_email:
        order = sorted(people, key=lambda p: (p.role not in ("admin", "finance"), p.role, p.email))
        chosen = st.sidebar.selectbox(
            "Acting as",
            [p.email for p in order],
            key="acting_as",
            format_func=lambda e: f"{e} ({by_email[e].role})",
            help="Sign-in comes with the roles release; until then, choose who you are acting as.",
        )
    return by_email[chosen]
