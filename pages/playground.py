"""Playground page."""

import streamlit as st

from pages.ui import coming_soon

st.title("Playground")
coming_soon("The Playground page", 4)
