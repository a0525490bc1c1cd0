"""Models & pricing page."""

import streamlit as st

from pages.ui import coming_soon

st.title("Models & pricing")
coming_soon("The Models & pricing page", 3)
