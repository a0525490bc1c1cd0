"""API keys (everyone): create, list and revoke one's own keys for the HTTP gateway (admins: everyone's). A new key is
shown once, right after it is made; the engine keeps only its hash. Thin: every action is one `services.keys` call."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from core.errors import CoreError
from core.services import Capability
from core.services.keys import ApiKeyView
from pages.tables import table
from pages.ui import guard, plain, services

NEW_KEY = "keys_new_secret"  # the key just created: shown until dismissed, never again
COLUMNS = {
    "id": ("id", "count"),
    "key": ("key", "text"),
    "name": ("name", "text"),
    "owner": ("owner", "text"),
    "status": ("status", "text"),
    "created": ("created", "instant"),
    "last used": ("last used", "instant"),
    "expires": ("expires", "instant"),
    "monthly credits": ("monthly credits", "text"),
    "rpm": ("requests/minute", "text"),
    "models": ("models", "text"),
}

principal = guard("keys")
svc = services()
manages_all = principal.can(Capability.MANAGE_API_KEYS)
gateway = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000/v1")

st.title("API keys")
st.caption(
    f"Call the catalog from your own apps through the gateway at `{gateway}` with the official OpenAI or Anthropic "
    "SDK. Calls are billed to the key's owner like Playground calls, and show on the Spend page per key."
)
if not manages_all:
    st.info("You manage your own keys. Admins manage everyone's.")

# ---- a key just created: shown once ---------------------------------------------------------------------------------
fresh = st.session_state.get(NEW_KEY)
if fresh:
    st.success(
        f"Key **{plain(fresh['name'])}** created for {plain(fresh['owner'])}. Copy it now: it is not shown again."
    )
    st.code(fresh["secret"], language=None)
    sample = fresh.get("model")
    st.code(
        f'from openai import OpenAI\nclient = OpenAI(base_url="{gateway}", api_key="{fresh["secret"]}")\n'
        + (
            f'client.chat.completions.create(model="{sample}", messages=[{{"role": "user", "content": "Hello"}}])'
            if sample
            else "# this key may call no chat model: see /v1/models for what it may call"
        ),
        language="python",
    )
    if st.button("I have stored it", type="primary"):
        del st.session_state[NEW_KEY]
        st.rerun()

# ---- create ---------------------------------------------------------------------------------------------------------
owners = [u.email for u in svc.users.list(principal)] if manages_all else [principal.email]
catalog = svc.models.list(principal)
models = sorted({m.model_id for m in catalog})
chat_models = {m.model_id for m in catalog if m.category == "chat"}
with st.form("create_key", clear_on_submit=True):
    st.subheader("Create a key")
    c1, c2 = st.columns(2)
    owner = c1.selectbox(
        "Owner (whose credits pay)",
        owners,
        index=owners.index(principal.email) if principal.email in owners else 0,
        key="key_owner",
    )
    name = c2.text_input("Name (what it is for)", max_chars=100, key="key_name")
    c3, c4, c5 = st.columns(3)
    monthly = c3.text_input("Monthly credits (empty: no limit)", key="key_monthly")
    rpm = c4.text_input("Requests per minute (empty: no limit)", key="key_rpm")
    expires = c5.date_input(
        f"Expires ({services().settings.reporting_tz}; empty: never)",
        value=None,
        key="key_expires",
        help="The key stops working when this day starts in the reporting time zone.",
    )
    allowed = st.multiselect("Models it may call (empty: every model)", models, key="key_models")
    if st.form_submit_button("Create key", type="primary"):
        try:
            made = svc.keys.create(
                principal,
                owner,
                name,
                monthly_credits=monthly,  # as typed: the engine refuses 2.5 or 1e20 with a sentence
                rpm=rpm,
                models=allowed or None,
                expires=expires,
            )
        except CoreError as exc:
            st.error(plain(str(exc)))
        else:
            # the sample call names a chat model this key may call (sandbox-chat for a key that may call any)
            sample = next((m for m in allowed if m in chat_models), None) if allowed else "sandbox-chat"
            st.session_state[NEW_KEY] = {
                "secret": made.secret,
                "name": made.key.name,
                "owner": made.key.owner_email,
                "model": sample,
            }
            st.rerun()

# ---- the keys -------------------------------------------------------------------------------------------------------
keys = svc.keys.list(principal)
st.subheader("Keys")
if not keys:
    st.write("No keys yet.")
    st.stop()


def row(k: ApiKeyView) -> dict[str, object]:
    return {
        "id": k.id,
        "key": f"{k.prefix}…",
        "name": k.name,
        "owner": k.owner_email,
        "status": k.status(),
        "created": k.created_at,
        "last used": k.last_used_at,
        "expires": k.expires_at,
        "monthly credits": "no limit" if k.limits.monthly_credits is None else f"{k.limits.monthly_credits:,}",
        "rpm": "no limit" if k.limits.rpm is None else f"{k.limits.rpm:,}",
        "models": ", ".join(k.limits.models) if k.limits.models is not None else "all",
    }


table(pd.DataFrame([row(k) for k in keys]), COLUMNS, key="keys_table")

if revoked := st.session_state.pop("keys_revoked", None):
    st.success(plain(f"Revoked {revoked}: calls with it are refused from now on."))
    st.session_state["revoke_sure"] = False  # before the box exists: each revocation is confirmed on its own
active = [k for k in keys if k.status() == "active"]
if active:
    with st.form("revoke_key"):
        st.subheader("Revoke a key")
        labels = {k.id: f"{k.prefix}… {k.name} ({k.owner_email})" for k in active}
        picked = st.selectbox("Key", list(labels), format_func=lambda i: labels[i], key="revoke_pick")
        sure = st.checkbox("Calls with this key will be refused from now on", key="revoke_sure")
        if st.form_submit_button("Revoke"):
            if not sure:
                st.warning("Tick the box to confirm.")
            else:
                target = next(k for k in active if k.id == picked)
                svc.keys.revoke(principal, target.owner_email, target.id)
                st.session_state["keys_revoked"] = labels[picked]
                st.rerun()
