"""Router only: the navigation over the pages, and who is signed in."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="AI credits", page_icon=":material/payments:", layout="wide")

pages = {
    "": [st.Page("pages/home.py", title="Overview", icon=":material/dashboard:", default=True)],
    "Build": [st.Page("pages/playground.py", title="Playground", icon=":material/science:")],
    "Finance": [
        st.Page("pages/spend.py", title="Spend", icon=":material/monitoring:"),
        st.Page("pages/ledger.py", title="Ledger", icon=":material/account_balance:"),
    ],
    "Engineering": [
        st.Page("pages/breakeven.py", title="Break-even", icon=":material/balance:"),
        st.Page("pages/endpoints.py", title="Endpoints", icon=":material/dns:"),
    ],
    "Catalog": [st.Page("pages/models.py", title="Models & pricing", icon=":material/sell:")],
}
st.navigation(pages).run()
