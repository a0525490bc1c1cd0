"""Router only: who is signed in, and the navigation over the pages their role may open."""

from __future__ import annotations

import streamlit as st

from core.access import PAGES
from core.services import Principal
from pages.ui import (
    LOCAL_ROLES,
    ROLE_LABELS,
    auth_configured,
    current_principal,
    error_boundary,
    local_users,
    plain,
    remember_local_choice,
    route_to_own_pages,
    serve_any_path_on_the_sign_in_page,
)

st.set_page_config(page_title="AI credits", page_icon=":material/payments:", layout="wide")

ALL_PAGES = {
    "home": ("", st.Page("pages/home.py", title="Overview", icon=":material/dashboard:", url_path="home")),
    "playground": ("Build", st.Page("pages/playground.py", title="Playground", icon=":material/science:")),
    "spend": ("Finance", st.Page("pages/spend.py", title="Spend", icon=":material/monitoring:")),
    "ledger": ("Finance", st.Page("pages/ledger.py", title="Ledger", icon=":material/account_balance:")),
    "budgets": ("Finance", st.Page("pages/budgets.py", title="Budgets & alerts", icon=":material/savings:")),
    "breakeven": ("Engineering", st.Page("pages/breakeven.py", title="Break-even", icon=":material/balance:")),
    "endpoints": ("Engineering", st.Page("pages/endpoints.py", title="Endpoints", icon=":material/dns:")),
    "models": ("Catalog", st.Page("pages/models.py", title="Models & pricing", icon=":material/sell:")),
    "savings": ("Optimize", st.Page("pages/savings.py", title="Savings", icon=":material/savings:")),
    "pricing_lab": ("Optimize", st.Page("pages/pricing_lab.py", title="Pricing lab", icon=":material/tune:")),
    "keys": ("Build", st.Page("pages/keys.py", title="API keys", icon=":material/key:")),
}


def sign_in_page() -> None:
    st.title("AI credits")
    st.write("Sign in with your company account to continue.")
    st.button("Sign in", type="primary", on_click=st.login)


def unknown_user_page() -> None:
    st.title("Not yet a user")
    who = plain(str(st.user.get("email") or "Your account"))
    st.warning(f"{who} is not in the users list. Ask an admin to add you.")
    st.button("Sign out", on_click=st.logout)


def _pick_role(people: dict[str, list[str]]) -> None:
    remember_local_choice(people[st.session_state["acting_role"]][0])


def _pick_person(key: str) -> None:
    remember_local_choice(st.session_state[key])


def acting_as(principal: Principal, users: list[tuple[str, str]]) -> None:
    """Local mode's "Acting as": a role first (most to least privileged), then a person of that role. The pick is
    kept in the URL (?as=) and beside the data, so a reload or a new tab acts as the same person."""
    people: dict[str, list[str]] = {}
    for email, role in users:
        people.setdefault(role, []).append(email)
    roles = [r for r in LOCAL_ROLES if r in people]
    st.session_state["acting_role"] = str(principal.role)
    role = st.selectbox(
        "Acting as", roles, format_func=ROLE_LABELS.get, key="acting_role", on_change=_pick_role, args=(people,)
    )
    key = f"acting_person_{role}"
    st.session_state[key] = principal.email
    st.selectbox("Person", people[role], key=key, on_change=_pick_person, args=(key,), label_visibility="collapsed")
    st.query_params["as"] = principal.email  # the URL keeps who is acting, so a reload does too


if auth_configured():
    principal = current_principal()
    if principal is None:
        page = sign_in_page if not getattr(st.user, "is_logged_in", False) else unknown_user_page
        serve_any_path_on_the_sign_in_page()
        st.navigation([st.Page(page, title="Sign in")]).run()
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as **{plain(principal.name)}** · {principal.role}")
        st.button("Sign out", on_click=st.logout)
else:
    principal = current_principal()
    with st.sidebar:
        st.caption("**Local mode** · no sign-in configured; choose who you act as (demo users).")
        if principal is not None:
            acting_as(principal, local_users())
    if principal is None:
        serve_any_path_on_the_sign_in_page()
        st.navigation([st.Page(sign_in_page, title="Sign in")]).run()
        st.stop()

# The same sections in the same order for every role; a role sees the pages it may open.
allowed = set(PAGES[principal.role])
sections: dict[str, list[st.Page]] = {}
for name, (section, page) in ALL_PAGES.items():
    if name in allowed:
        sections.setdefault(section, []).append(page)
# names are the URL paths: another role's page (a shared link) opens the person's first page, saying why
redirected = route_to_own_pages(principal, {name: page.title for name, (_, page) in ALL_PAGES.items()})
with error_boundary():
    nav = st.navigation(sections)
    if redirected:
        st.info(plain(redirected), icon=":material/info:")
    nav.run()
