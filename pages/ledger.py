"""Ledger page."""

import streamlit as st

from pages.ui import coming_soon

st.title("Ledger")
coming_soon("The Ledger page", 3)
