"""Who is acting on a page: the one seam the roles issue replaces with the signed-in identity.

Until sign-in exists, the acting person is `st.session_state["user_email"]` when something set it, otherwise a
sidebar choice among the users. Pages ask `acting_user()` and never read identity any other way.
"""

from __future__ import annotations

import streamlit as st

from core.users import UserView, list_users
from pages.ui import runtime


@st.cache_data(ttl=60, show_spinner=False)
def _people() -> list[UserView]:
    with runtime().session() as s:
        return list_users(s)


def acting_user() -> UserView | None:
    """The person acting on this page, or None when the database has no users yet."""
    people = _people()
    if not people:
        return None
    by_email = {p.email: p for p in people}
    chosen = st.session_state.get("user_email")
    if chosen not in by_email:
        # Admins and finance first: they are the ones who grant credits and edit prices.
        order = sorted(people, key=lambda p: (p.role not in ("admin", "finance"), p.role, p.email))
        chosen = st.sidebar.selectbox(
            "Acting as",
            [p.email for p in order],
            key="acting_as",
            format_func=lambda e: f"{e} ({by_email[e].role})",
            help="Sign-in comes with the roles release; until then, choose who you are acting as.",
        )
    return by_email[chosen]
