"""Endpoints page."""

import streamlit as st

from pages.ui import coming_soon

st.title("Endpoints")
coming_soon("The Endpoints page", 7)
