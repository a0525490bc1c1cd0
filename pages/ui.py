"""Shared page plumbing: the process's services (built once, shared by every session) and the signed-in person.
No SQL, HTTP or money math here."""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.config import load_settings
from core.errors import CoreError, InvalidInputError
from core.services import SYSTEM, Principal, Services, roles_for_page
from core.services.spend import STALE_AFTER_SECONDS
from core.services.users import UserView

if TYPE_CHECKING:
    from streamlit.runtime.pages_manager import PagesManager

LOCAL_USER_KEY = "local_user_email"
log = logging.getLogger(__name__)


def _stop_alert_timer(built: Services) -> None:
    built.auto_alerts.stop()


@st.cache_resource(show_spinner=False, on_release=_stop_alert_timer)
def _services(database_url: str, analytics_path: str) -> Services:
    built = Services(settings=load_settings())
    built.init()
    built.resume_spool()
    # alerts evaluate every ALERTS_EVERY_SECONDS while the app runs, spend anomalies included: this process keeps the
    # analytics copy its pages sync (gateway workers never open it); the timer stops with the process
    if built.auto_alerts.start(anomalies=True):
        atexit.register(built.auto_alerts.stop)
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


LOCAL_ROLES = ("admin", "finance", "engineer", "pm")  # most to least privileged: the order "Acting as" offers
ROLE_LABELS = {"admin": "Admin", "finance": "Finance", "engineer": "Engineer", "pm": "PM"}
ROLE_GROUPS = {"admin": "admins", "finance": "finance", "engineer": "engineers", "pm": "PMs"}  # "for admins and ..."


def _default_local_email() -> str | None:
    """Who local mode acts as when nothing was chosen yet: LOCAL_USER_EMAIL (an email, or a role name for that role's
    first person), else the least-privileged person (a PM): local mode must not hand out admin by default."""
    users = local_users()
    wanted = os.environ.get("LOCAL_USER_EMAIL", "").strip().lower()
    if wanted in LOCAL_ROLES:
        first = next((e for e, r in users if r == wanted), None)
        if first:
            return first
    elif wanted:
        return wanted
    for role in reversed(LOCAL_ROLES):
        for email, r in users:
            if r == role:
                return email
    return None


def _choice_file() -> Path:
    return services().settings.analytics_path.parent / "local_user.json"


def _saved_choice() -> str | None:
    """The last "Acting as" pick on this database (so a new tab starts as the same person), if any."""
    try:
        return json.loads(_choice_file().read_text()).get(services().settings.database_url)
    except (OSError, ValueError, AttributeError):
        return None


def remember_local_choice(email: str) -> None:
    """Local mode only: keep the "Acting as" pick in the session, in the URL (?as=, so a reload keeps it) and in a
    small file beside the analytics store (so a new tab does). Never called when sign-in is configured."""
    st.session_state[LOCAL_USER_KEY] = email
    st.query_params["as"] = email
    path = _choice_file()
    try:
        saved = json.loads(path.read_text()) if path.exists() else {}
        saved = saved if isinstance(saved, dict) else {}
        saved[services().settings.database_url] = email
        path.write_text(json.dumps(saved, indent=1))
    except (OSError, ValueError):
        log.warning("could not remember the local-mode choice in %s", path, exc_info=True)


def _local_email() -> str:
    """Local mode's person for this session: this session's pick, else ?as= in the URL (a reload), else the last pick
    on this database (a new tab), else the default; an email that is not a user is skipped."""
    chosen = st.session_state.get(LOCAL_USER_KEY)
    if chosen:
        return chosen
    known = {e for e, _ in local_users()}
    for candidate in (st.query_params.get("as"), _saved_choice()):
        if candidate and candidate.strip().lower() in known:
            st.session_state[LOCAL_USER_KEY] = candidate.strip().lower()
            return st.session_state[LOCAL_USER_KEY]
    return _default_local_email() or ""


def current_principal() -> Principal | None:
    """The signed-in person: the OIDC email when [auth] is configured, otherwise the local-mode pick."""
    if auth_configured():
        if not getattr(st.user, "is_logged_in", False):
            return None
        email = str(st.user.get("email") or "")
    else:
        email = _local_email()
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


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _path_asked_for() -> tuple[PagesManager, str] | None:
    """Streamlit's page manager and the URL path this run was asked for, when it was asked by path (a link, a
    bookmark, a reload) rather than "/" or a click in the navigation (by its page hash)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    manager = ctx.pages_manager if ctx is not None else None
    if manager is None or manager.intended_page_script_hash or not manager.intended_page_name:
        return None
    return manager, manager.intended_page_name


def serve_any_path_on_the_sign_in_page() -> None:
    """Before anyone is signed in the navigation has the sign-in page alone: a link to a page (/ledger) opens it too,
    instead of Streamlit's "Page not found" popup over it."""
    asked = _path_asked_for()
    if asked is not None:
        asked[0].set_script_intent("", "")


def route_to_own_pages(principal: Principal, titles: dict[str, str]) -> str | None:
    """Open a path the navigation does not serve on the person's own first page, instead of Streamlit's "Page not
    found" popup; return the line that says why (None when nothing was redirected).

    `titles` maps every page's URL path to its title, in the navigation's order. Streamlit serves the first page at
    "/" only, so its own path (a PM's /playground: a bookmark, a reload) is read as "/" silently; another role's page
    (a PM opening a shared /breakeven link) or a path that is no page says so, politely, and what they can open."""
    asked = _path_asked_for()
    if asked is None:
        return None  # "/", or a click in the navigation (by its page hash)
    manager, path = asked
    own = [name for name in titles if principal.may_open(name)]
    if path in own and path != own[0]:
        return None  # one of their pages: Streamlit serves it
    manager.set_script_intent("", "")
    if path == own[0]:
        return None
    first = titles[own[0]]
    you_can = f"The menu lists the pages you can open ({_joined([titles[n] for n in own])})"
    if path not in titles:
        return f"There is no page at /{path}, so here is {first}. {you_can}."
    roles = _joined([ROLE_GROUPS[r] for r in roles_for_page(path)])
    return (
        f"{titles[path]} is for {roles}, and your role is {ROLE_LABELS[principal.role]}, so here is {first}. "
        f"{you_can}; ask an admin if you need {titles[path]}."
    )


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
    # keyed by the database too, as every page cache is: one person's banners of one ledger never serve another's
    who_key = f"{load_settings().database_url}|{principal.email}|{principal.role}|{billed_calls()}"
    for banner in _banners(principal, who_key):
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
    reads Markdown (and $...$ as LaTeX, :name: as an icon, :red[...] as colour, &...; as a character): every such
    character escaped. Streamlit also links bare URLs and `www.` names found in the text itself, escaped or not: an
    invisible word joiner (U+2060) after `scheme:` and `www` keeps them text (a link typed by a user is never live),
    and one after the colon of `:material/` keeps Streamlit's icon syntax text too (it draws the icon escaped or not).
    An email is left whole, though Streamlit makes it a mailto: link to itself: people copy emails from the pages
    into commands, and a hidden character would break them."""
    escaped = re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])", r"\\\1", text)
    return _UNLINKED.sub("\\1\u2060", escaped)


_UNLINKED = re.compile(r"(?i)(\\:(?=//|material/)|(?<=www)(?=\\\.))")


def whole(value: float | int, what: str) -> int:
    """A whole-number field's value, refused with a sentence when it is not whole. Such fields are float number
    inputs: Streamlit's integer ones read a typed "1e20" as 1 and "2.5" as 2, without a word."""
    number = float(value)
    if not number.is_integer():
        raise InvalidInputError(f"{what}: {number:g} is not a whole number; type {int(number)} or {int(number) + 1}.")
    return int(number)


@contextmanager
def error_boundary() -> Iterator[None]:
    """Every page runs inside this: an engine error shows as its own sentence, anything else as a short line with a
    reference to the log, and never as a stack trace. Streamlit's st.stop and st.rerun are BaseExceptions, not
    Exceptions, so they pass through untouched."""
    try:
        yield
    except Exception as exc:
        show_error(exc)


def show_error(exc: Exception) -> None:
    """A failed action as one line: the engine's own sentence for its typed errors, otherwise a short message with a
    reference to the log entry that holds the exception and its trace (never shown: it may name internals)."""
    if isinstance(exc, CoreError):
        log.warning("an action stopped on an engine error: %s", exc, exc_info=True)
        st.error(plain(str(exc)), icon=":material/error:")
        return
    ref = secrets.token_hex(3)
    log.error("an action failed (ref %s)", ref, exc_info=exc)
    st.error(
        f"Something went wrong and it was logged (ref {ref}). Try again; if it keeps happening, give an admin the "
        "reference.",
        icon=":material/error:",
    )


def acting_user() -> UserView | None:
    """The signed-in person as a user row (the one seam pages use to say who acts); None when nobody is."""
    principal = current_principal()
    if principal is None:
        return None
    return services().users.get(principal, principal.user_id)
