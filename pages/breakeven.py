"""Break-even page."""

import streamlit as st

from pages.ui import coming_soon

st.title("Break-even")
coming_soon("The Break-even page", 6)
