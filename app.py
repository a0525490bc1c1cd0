"""Router only: who is signed in, and the navigation over the pages their role may open."""

from __future__ import annotations

import streamlit as st

from core.access import PAGES
from pages.ui import LOCAL_USER_KEY, auth_configured, current_principal, local_users

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
    st.warning(f"{st.user.get('email', 'Your account')} is not in the users list. Ask an admin to add you.")
    st.button("Sign out", on_click=st.logout)


if auth_configured():
    principal = current_principal()
    if principal is None:
        page = sign_in_page if not getattr(st.user, "is_logged_in", False) else unknown_user_page
        st.navigation([st.Page(page, title="Sign in")]).run()
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as **{principal.name}** · {principal.role}")
        st.button("Sign out", on_click=st.logout)
else:
    users = local_users()
    emails = [e for e, _ in users]
    roles = dict(users)
    principal = current_principal()
    with st.sidebar:
        st.caption("**Local mode** · no sign-in configured; pick who you act as (demo users).")
        if emails:
            current = principal.email if principal else emails[0]
            st.selectbox(
                "Acting as",
                emails,
                index=emails.index(current) if current in emails else 0,
                format_func=lambda e: f"{e} ({roles[e]})",
                key=LOCAL_USER_KEY,
            )
            principal = current_principal()
    if principal is None:
        st.navigation([st.Page(sign_in_page, title="Sign in")]).run()
        st.stop()

sections: dict[str, list[st.Page]] = {}
for name in PAGES[principal.role]:
    section, page = ALL_PAGES[name]
    sections.setdefault(section, []).append(page)
st.navigation(sections).run()
