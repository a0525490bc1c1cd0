"""Shared page plumbing: the cached engine runtime and the signed-in person. No SQL, HTTP or money math here."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import streamlit as st

from core.access import Principal
from core.analytics import STALE_AFTER_SECONDS, SpendQueries, store_for, sync_store
from core.config import load_settings
from core.errors import NotFoundError
from core.runtime import Runtime
from core.users import UserView, get_user, list_users

LOCAL_USER_KEY = "local_user_email"


@st.cache_resource(show_spinner=False)
def _runtime(database_url: str, analytics_path: str) -> Runtime:
    rt = Runtime(load_settings())
    rt.init()
    return rt


def runtime() -> Runtime:
    """The engine for the configured database (one per database URL, shared by every session)."""
    settings = load_settings()
    return _runtime(settings.database_url, str(settings.analytics_path))


def analytics_queries() -> SpendQueries:
    """The spend queries over the configured analytics store (as it is: see `sync_when_stale`)."""
    rt = runtime()
    return SpendQueries(store_for(rt), credit_usd=rt.settings.credit_usd, reporting_tz=rt.settings.reporting_tz)


def sync_when_stale() -> str:
    """Sync the analytics store when it is missing or older than five minutes, and return its version key: a new
    sync means new answers, so page caches key on it."""
    rt = runtime()
    with st.spinner("Syncing the analytics store…"):
        sync_store(rt, max_age_seconds=STALE_AFTER_SECONDS)
    return store_for(rt).version_key()


def auth_configured() -> bool:
    """OpenID Connect sign-in is on when `.streamlit/secrets.toml` has an [auth] section."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        return runtime().settings.auth_configured


def local_users() -> list[tuple[str, str]]:
    with runtime().session() as s:
        return [(u.email, u.role) for u in list_users(s)]


def _default_local_email() -> str | None:
    wanted = os.environ.get("LOCAL_USER_EMAIL")
    if wanted:
        return wanted.strip().lower()
    users = local_users()
    admins = [e for e, r in users if r == "admin"]
    return (admins or [e for e, _ in users] or [None])[0]


def current_principal() -> Principal | None:
    """The signed-in person: the OIDC email when [auth] is configured, otherwise the local-mode pick."""
    if auth_configured():
        if not getattr(st.user, "is_logged_in", False):
            return None
        email = str(st.user.get("email") or "")
    else:
        email = st.session_state.get(LOCAL_USER_KEY) or _default_local_email() or ""
    if not email:
        return None
    try:
        with runtime().session() as s:
            return Principal.of(get_user(s, email))
    except NotFoundError:
        return None


def _through_the_router() -> None:
    """Streamlit starts in its legacy multipage mode when a `pages/` folder exists, and until app.py's st.navigation
    has run once, a page URL opened directly runs that page file alone (no sign-in, every file listed). Leave that
    mode and rerun, so app.py routes the request like any other."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def guard(page: str) -> Principal:
    """Every page starts here: who is acting, and may they open this page? Stops the page otherwise."""
    _through_the_router()
    principal = current_principal()
    if principal is None:
        st.warning("Sign in first. If you are signed in, ask an admin to add your email to the users.")
        st.stop()
    if not principal.may_open(page):
        st.error(f"Your role ({principal.role}) cannot open this page.")
        st.stop()
    return principal


def coming_soon(what: str, issue: int) -> None:
    st.info(f"**Coming in this release.** {what} (tracked in issue #{issue}). Nothing on this page is simulated.")


def plain(text: str) -> str:
    """Text from the data (model ids, emails, names, sentences with dollar amounts) shown as itself where Streamlit
    reads Markdown (and $...$ as LaTeX): every Markdown character escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def money(usd: object) -> str:
    d = Decimal(str(usd))
    return f"${d:,.2f}" if abs(d) >= 1 else f"${d:,.4f}"


def acting_user() -> UserView | None:
    """The signed-in person as a user row (the one seam pages use to say who acts); None when nobody is."""
    principal = current_principal()
    if principal is None:
        return None
    with runtime().session() as s:
        return get_user(s, principal.user_id)
