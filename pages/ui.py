"""Shared page plumbing: the process's services (built once, shared by every session) and the signed-in person.
No SQL, HTTP or money math here."""

from __future__ import annotations

import logging
import os
import re
import threading

import streamlit as st

from core.config import load_settings
from core.services import SYSTEM, Principal, Services
from core.services.spend import STALE_AFTER_SECONDS
from core.services.users import UserView

LOCAL_USER_KEY = "local_user_email"
log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def _services(database_url: str, analytics_path: str) -> Services:
    built = Services(settings=load_settings())
    built.init()
    return built


def services() -> Services:
    """The engine's one door for the configured database (one per database URL, shared by every session)."""
    settings = load_settings()
    return _services(settings.database_url, str(settings.analytics_path))


def sync_when_stale(who: Principal) -> str:
    """Sync the analytics store when it is missing or older than five minutes, and return its version key: a new
    sync means new answers, so page caches key on it."""
    with st.spinner("Syncing the analytics store…"):
        services().spend.sync(who, max_age_seconds=STALE_AFTER_SECONDS)
    return services().spend.store_version(who)


def auth_configured() -> bool:
    """OpenID Connect sign-in is on when `.streamlit/secrets.toml` has an [auth] section."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        return services().settings.auth_configured


def local_users() -> list[tuple[str, str]]:
    """(email, role) of every user: local mode's "acting as" choices (nobody is signed in; the system lists them)."""
    return [(u.email, u.role) for u in services().users.list(SYSTEM)]


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
    return services().users.identify(SYSTEM, email)


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
    for banner in _banners(principal, f"{principal.email}|{principal.role}|{billed_calls()}"):
        st.warning(plain(banner.message), icon=":material/warning:")
    return principal


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> None:
        with self._lock:
            self.value += 1


@st.cache_resource(show_spinner=False)
def _billed() -> _Counter:
    return _Counter()


def call_billed() -> None:
    """A page billed a call: the banners and budget figures it may have moved are read afresh on the next run (by
    every session of this process), so someone who just passed a budget threshold sees it at once."""
    _billed().bump()


def billed_calls() -> int:
    """How many calls this process's pages have billed: part of the cache key of anything a call changes (banners,
    budgets); calls made elsewhere (the command line, the gateway) show when those caches expire."""
    return _billed().value


@st.cache_data(ttl=30, show_spinner=False)
def _banners(_who: Principal, who_key: str) -> list:
    """The signed-in person's budget and low-balance alerts, shown on every page until dismissed."""
    try:
        return services().budgets.banners(_who)
    except Exception:  # a banner must never stop a page
        log.exception("could not read the alert banners")
        return []


def plain(text: str) -> str:
    """Text from the data (model ids, emails, names, sentences with dollar amounts) shown as itself where Streamlit
    reads Markdown (and $...$ as LaTeX, :name: as an icon, :red[...] as colour): every such character escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)


def acting_user() -> UserView | None:
    """The signed-in person as a user row (the one seam pages use to say who acts); None when nobody is."""
    principal = current_principal()
    if principal is None:
        return None
    return services().users.get(principal, principal.user_id)
