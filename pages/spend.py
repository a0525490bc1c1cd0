"""Spend page."""

import streamlit as st

from pages.ui import coming_soon

st.title("Spend")
coming_soon("The Spend page", 5)
