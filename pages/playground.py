"""Playground: try a model, see exactly what the call cost. Chat streams; speech, transcription, images, music."""

from __future__ import annotations

import logging
from decimal import Decimal

import pandas as pd
import streamlit as st

from core.services import Principal
from core.services.generation import GenerationRequest, GenerationResult
from core.services.models import ModelPrice
from core.services.playground import (
    CATEGORY_LABELS,
    COMPARE_CATEGORIES,
    IMAGE_FILE_TYPES,
    MAX_COMPARE,
    CompareEntry,
    PlaygroundCatalog,
    chat_content,
    compare_summary,
    cost_card,
    session_totals,
)
from core.services.users import UserView
from pages.fmt import count, credits, money, pct, price
from pages.tables import table
from pages.ui import call_billed, guard, plain, services, show_error

log = logging.getLogger(__name__)
svc = services()
credit_usd = svc.settings.credit_usd


@st.cache_data(ttl=60, show_spinner=False)
def load_catalog(_who: Principal, database_url: str) -> PlaygroundCatalog:
    return services().playground.catalog(_who)


@st.cache_data(ttl=30, show_spinner=False)
def load_payers(database_url: str, principal: Principal) -> list[UserView]:
    return services().playground.payers(principal)


def paying_user(principal: Principal) -> UserView:
    """Whose credits pay: the signed-in person's; a role that may generate for others picks whom to bill."""
    users = {u.id: u for u in load_payers(svc.settings.database_url, principal)}
    if len(users) == 1:
        return next(iter(users.values()))
    chosen = st.sidebar.selectbox(
        "Bill calls to",
        list(users),
        format_func=lambda uid: f"{users[uid].name} <{users[uid].email}>",
        key="pg_payer",
    )
    return users[chosen]


def exact_usd(usd: Decimal) -> str:
    """One call's provider cost, exact below a dollar (costs are stored to 9 decimals; fmt.price drops trailing zeros),
    in cents from a dollar up."""
    return price(usd, digits=9)


def answer_text(text: str, simulated: bool) -> str:
    """A model's answer as Markdown (models write Markdown), but a simulated one as plain text: the sandbox quotes
    what the user typed, which is never shown as Markdown."""
    return plain(text) if simulated else text


def latency_label(sandbox: bool) -> str:
    """A simulated call's time is the sandbox's, not a model's latency: it is named so."""
    return "Sandbox time" if sandbox else "Latency"


def latency_help(sandbox: bool) -> str | None:
    if not sandbox:
        return None
    return "How long the sandbox took to make up this answer offline: not the real model's latency."


def draw_cost_card(result: GenerationResult) -> None:
    card = cost_card(result, credit_usd)
    with st.container(border=True):
        simulated = " · **simulated**, priced as " + plain(card.priced_as) if result.sandbox else ""
        called = plain(f"{result.provider}/{result.model_id}")
        st.markdown(f"**Cost of this call** · {called}{simulated} · usage: {plain(card.usage)}")
        top = st.columns(3)
        top[0].metric(
            "Provider cost (USD)",
            exact_usd(card.base_cost_usd),
            f"not called; {exact_usd(card.catalog_cost_usd)} at catalog price" if card.cache_hit else None,
            delta_color="off",
            delta_arrow="off",
        )
        top[1].metric("Base credits", count(card.base_credits))
        top[2].metric("Markup", pct(card.markup_pct, 0))
        bottom = st.columns(3)
        charged, charged_usd = (
            (card.would_be_credits, card.would_be_usd) if result.sandbox else (card.credits_charged, card.charged_usd)
        )
        bottom[0].metric(
            "Would cost (not charged)" if result.sandbox else "Credits charged",
            "pending" if card.pending and not result.sandbox else count(charged),
            None if card.pending and not result.sandbox else price(charged_usd),
            delta_color="off",
            delta_arrow="off",
        )
        bottom[1].metric("Balance after", "pending" if card.balance_after is None else count(card.balance_after))
        bottom[2].metric(latency_label(result.sandbox), f"{card.latency_ms:,} ms", help=latency_help(result.sandbox))
        priced = "the catalog cost charged for the cached answer" if card.cache_hit else "provider cost"
        st.caption(
            f"Base credits = {priced} ÷ \\${credit_usd} per credit, rounded up; credits charged = base × "
            f"(100 + markup) / 100, rounded up. {plain(card.note)}"
        )


def remember(result: GenerationResult) -> None:
    st.session_state.setdefault("pg_calls", []).append(result)
    if result.credits_charged:
        call_billed()  # it may have passed a budget threshold: its banner and budgets show it on the next run


def run_call(user: UserView, model_id: str, provider: str, request: GenerationRequest) -> GenerationResult | None:
    try:
        with st.spinner("Calling the model…"):
            result = svc.generation.generate(principal, user, model_id, request, provider=provider)
    except Exception as exc:  # every failure is shown as a message, never a traceback
        show_error(exc)
        return None
    remember(result)
    return result


principal = guard("playground")
st.title("Playground")
user = paying_user(principal)
catalog = load_catalog(principal, svc.settings.database_url)

# Filled at the end of the run, so they include the call this run made.
balance_slot = st.sidebar.empty()
session_slot = st.sidebar.empty()


def draw_sidebar_figures() -> None:
    balance_slot.metric("Available credits", f"{svc.playground.available_credits(principal, user.id):,}")
    totals = session_totals(st.session_state.get("pg_calls", []), credit_usd)
    session_slot.metric(
        "This session",
        credits(totals.credits),
        f"{totals.calls} call{'s' if totals.calls != 1 else ''} · {money(totals.usd)}"
        + (f" · {totals.pending} charge{'s' if totals.pending != 1 else ''} pending" if totals.pending else ""),
        delta_color="off",
        delta_arrow="off",
    )


if catalog.unconfigured:
    names = ", ".join(sorted(p for p in catalog.unconfigured if p != "huggingface_endpoint"))
    st.caption(
        f"Not offered until their API key is set: {names}. The **sandbox** simulates every model offline (its "
        "*simulated* twin), priced like the real thing and never charged: Compare works without any key."
    )

mode = st.segmented_control("Mode", ["Single model", "Compare"], default="Single model", required=True, key="pg_mode")


def pick_model(category: str) -> tuple[str, str, ModelPrice]:
    providers = catalog.providers(category)
    provider = st.selectbox(
        "Provider",
        providers,
        format_func=lambda p: "sandbox (simulated)" if p == "sandbox" else p,
        key=f"pg_provider_{category}",
    )
    models = {m.model_id: m for m in catalog.models_of(category, provider)}
    model = models[
        st.selectbox(
            "Model",
            list(models),
            format_func=lambda mid: f"{models[mid].model_name} — {models[mid].price_label()}",
            key=f"pg_model_{category}_{provider}",
        )
    ]
    if provider == "sandbox":
        st.info(
            f"**Simulated.** The sandbox calls no model; its output is generated offline. It is priced like "
            f"{plain(model.mirrors or '')} so the cost card shows what the call would cost, and nothing is charged.",
            icon=":material/science:",
        )
    return provider, model.model_id, model


def draw_compare(entries: list[CompareEntry], category: str) -> None:
    """Each model's answer side by side, then the summary: the cheapest and the fastest marked, each call's exact
    provider cost next to its whole credits, and why rounding can make very different costs equal."""
    summary = compare_summary(entries, credit_usd)
    rows = iter(summary.rows)
    for col, entry in zip(st.columns(len(entries) or 1), entries, strict=False):
        with col:
            st.subheader(entry.model.model_name)
            if entry.result is None:
                st.error(entry.error)
                continue
            result, row = entry.result, next(rows)
            remember(result)
            marks = [m for m, on in (("Cheapest", row.cheapest), ("Fastest", row.fastest)) if on]
            if marks:
                st.badge(" · ".join(marks), icon=":material/star:", color="green")
            if result.sandbox:
                st.caption(f":material/science: Simulated: priced as `{row.priced_as}`, not charged")
            if category == "tts":
                st.audio(result.data, format=result.mime or "audio/wav")
            elif category == "image":
                st.image(result.data)
            else:
                st.markdown(answer_text(result.text or "", result.sandbox))
            card = cost_card(result, credit_usd)
            st.metric(latency_label(result.sandbox), f"{card.latency_ms:,} ms", help=latency_help(result.sandbox))
            st.metric(
                "Would cost (not charged)" if result.sandbox else "Credits charged",
                count(row.credits),
                price(row.credits_usd),
                delta_color="off",
                delta_arrow="off",
            )
            st.caption(
                f"{card.usage} · provider cost {exact_usd(card.base_cost_usd)} · "
                f"{credits(card.base_credits).replace(' credit', ' base credit', 1)} · "
                f"markup {pct(card.markup_pct, 0)} · balance after "
                f"{'pending' if card.balance_after is None else f'{card.balance_after:,}'}. {plain(card.note)}"
            )
    if not summary.rows:
        return
    st.subheader("Summary")
    frame = pd.DataFrame(
        [
            {
                "mark": " · ".join(m for m, on in (("cheapest", r.cheapest), ("fastest", r.fastest)) if on),
                "model": r.model_name,
                "priced_as": r.priced_as + (" (simulated)" if r.simulated else " (cached)" if r.cached else ""),
                "cost": exact_usd(r.provider_cost_usd),
                "credits": r.credits,
                "credits_usd": price(r.credits_usd),
                "latency": r.latency_ms,
            }
            for r in summary.rows
        ]
    )
    table(
        frame,
        {
            "mark": ("", "text"),
            "model": ("Model", "text"),
            "priced_as": ("Priced as", "text"),
            "cost": ("Provider cost (exact USD)", "text"),
            "credits": ("Credits", "credits"),
            "credits_usd": ("Credits in USD", "text"),
            "latency": ("Latency", "ms"),
        },
        help={"credits": "what the call charges (a simulated call: what the real call would charge)"},
        key="pg_compare_summary",
    )
    for note in (summary.rounding_note, summary.tie_note, summary.simulated_note):
        if note:
            st.caption(note)


if mode == "Compare":
    offered = [c for c in COMPARE_CATEGORIES if catalog.models.get(c)]
    compare_category = st.selectbox(
        "Category", offered, format_func=lambda c: CATEGORY_LABELS[c], key="pg_compare_category"
    )
    pool = {m.key: m for m in catalog.models.get(compare_category, [])}
    keys = st.multiselect(
        f"{CATEGORY_LABELS[compare_category]} models to compare (2 to {MAX_COMPARE})",
        list(pool),
        default=list(pool)[:2],
        max_selections=MAX_COMPARE,
        format_func=lambda k: f"{pool[k].model_name} — {pool[k].price_label()}",
        key="pg_compare_models" if compare_category == "chat" else f"pg_compare_models_{compare_category}",
    )
    if any(m.provider == "sandbox" for m in pool.values()):
        st.caption(
            "Models marked *(simulated)* run in the sandbox: no key needed, no model called, nothing charged. Each is "
            "priced as its real model, so the summary shows what the real calls would cost."
        )
    if len(pool) < 2:
        st.caption("Compare needs two models of this category: set another provider's API key to offer its models.")
    chosen = [pool[k] for k in keys]
    prompt, upload = "", None
    if compare_category == "speech_to_text":
        upload = st.file_uploader(
            "Audio file", type=["wav", "mp3", "flac", "ogg", "m4a", "webm"], key="pg_compare_audio"
        )
        ready = upload is not None
    else:
        label = {"chat": "Prompt", "tts": "Text to speak", "image": "Image prompt"}[compare_category]
        prompt = st.text_area(label, key="pg_compare_prompt", placeholder="One input, sent to every model")
        ready = bool(prompt.strip())
    if st.button("Compare", type="primary", disabled=len(chosen) < 2 or not ready):
        try:
            with st.spinner("Calling the models…"):
                entries = svc.playground.compare(
                    principal,
                    user,
                    chosen,
                    prompt,
                    category=compare_category,
                    audio=upload.getvalue() if upload is not None else None,
                    audio_filename=upload.name if upload is not None else None,
                    audio_mime=upload.type if upload is not None else None,
                )
        except Exception as exc:
            show_error(exc)
            entries = []
        draw_compare(entries, compare_category)
    draw_sidebar_figures()
    st.stop()

categories = catalog.categories()
category = st.selectbox("Category", categories, format_func=lambda c: CATEGORY_LABELS[c], key="pg_category")
provider, model_id, model = pick_model(category)

if category == "chat":
    key = f"pg_chat_{provider}_{model_id}"
    history: list[dict] = st.session_state.setdefault(key, [])
    max_tokens = st.number_input("Max output tokens", 16, 8192, 512, step=64, key="pg_max_tokens")
    for turn in history:
        with st.chat_message(turn["role"]):
            said = turn.get("text", turn["content"])
            simulated = turn.get("result") is not None and turn["result"].sandbox
            st.markdown(plain(said) if turn["role"] == "user" else answer_text(said, simulated))  # typed: as typed
            for image in turn.get("images", ()):
                st.image(image, width=240)
            if turn.get("result") is not None:
                draw_cost_card(turn["result"])
    submitted = st.chat_input(
        "Message the model (attach images to show them)",
        accept_file="multiple",
        file_type=list(IMAGE_FILE_TYPES),
        max_upload_size=5,  # MB: Anthropic's most per image
    )
    message = (submitted.text or "") if submitted is not None else ""
    attached = [(f.name, f.getvalue()) for f in submitted.files] if submitted is not None else []
    if message.strip() or attached:
        with st.chat_message("user"):
            st.markdown(plain(message))
            for _name, image in attached:
                st.image(image, width=240)
        convo = [{"role": t["role"], "content": t["content"]} for t in history]
        try:
            content = chat_content(message, attached)
        except Exception as exc:
            show_error(exc)
            st.stop()
        convo.append({"role": "user", "content": content})
        request = GenerationRequest(category="chat", messages=convo, max_tokens=int(max_tokens), stream=True)
        with st.chat_message("assistant"):
            try:
                stream = svc.generation.stream(principal, user, model_id, request, provider=provider)
                shown = (answer_text(c, provider == "sandbox") if isinstance(c, str) else c for c in stream)
                reply = st.write_stream(shown)
                result = stream.result
            except Exception as exc:
                show_error(exc)
            else:
                remember(result)
                draw_cost_card(result)
                history.append(
                    {"role": "user", "content": content, "text": message, "images": [i for _n, i in attached]}
                )
                history.append({"role": "assistant", "content": result.text or str(reply), "result": result})
                st.rerun()
    if history and st.button("Clear conversation", key="pg_clear"):
        st.session_state[key] = []
        st.rerun()

elif category == "tts":
    text = st.text_area("Text to speak", key="pg_tts_text", max_chars=10_000)
    voice = st.text_input("Voice (optional)", key="pg_tts_voice", placeholder="e.g. alloy, nova, male-qn-qingse")
    if st.button("Speak", type="primary", disabled=not text.strip()):
        request = GenerationRequest(category="tts", text=text, voice=voice or None)
        if result := run_call(user, model_id, provider, request):
            st.audio(result.data, format=result.mime or "audio/wav")
            st.download_button(
                "Download audio", result.data, file_name=f"speech-{result.usage_id or 'pending'}", mime=result.mime
            )
            draw_cost_card(result)

elif category == "speech_to_text":
    upload = st.file_uploader("Audio file", type=["wav", "mp3", "flac", "ogg", "m4a", "webm"], key="pg_stt_file")
    if st.button("Transcribe", type="primary", disabled=upload is None):
        request = GenerationRequest(
            category="speech_to_text", audio=upload.getvalue(), audio_filename=upload.name, audio_mime=upload.type
        )
        if result := run_call(user, model_id, provider, request):
            st.text_area("Transcript", result.text or "", key=f"pg_transcript_{result.usage_id or id(result)}")
            draw_cost_card(result)

elif category == "image":
    prompt = st.text_area("Prompt", key="pg_image_prompt")
    images = model.price_variants.get("images") or {}
    sizes = sorted({k.split("/")[-1] for k in images}) or ["1024x1024"]
    qualities = sorted({k.split("/")[0] for k in images if "/" in k})
    c1, c2 = st.columns(2)
    default_size = model.price_variants.get("default_size", sizes[0])
    size = c1.selectbox("Size", sizes, index=sizes.index(default_size) if default_size in sizes else 0, key="pg_size")
    quality = c2.selectbox("Quality", qualities, key="pg_quality") if qualities else None
    if st.button("Generate image", type="primary", disabled=not prompt.strip()):
        request = GenerationRequest(category="image", text=prompt, size=size, quality=quality)
        if result := run_call(user, model_id, provider, request):
            st.image(result.data, caption=plain(prompt[:120]))  # typed: as typed
            draw_cost_card(result)

elif category == "music":
    prompt = st.text_input("Style", key="pg_music_prompt", placeholder="e.g. indie folk, melancholic, acoustic guitar")
    lyrics = st.text_area("Lyrics", key="pg_music_lyrics", placeholder="[Verse]\n…\n[Chorus]\n…")
    if st.button("Compose", type="primary", disabled=not prompt.strip()):
        request = GenerationRequest(category="music", text=prompt, lyrics=lyrics or None)
        if result := run_call(user, model_id, provider, request):
            st.audio(result.data, format=result.mime or "audio/mpeg")
            draw_cost_card(result)

elif category == "voice_clone":
    sample = st.file_uploader("Voice sample (10 s to 5 min)", type=["wav", "mp3", "flac", "m4a"], key="pg_clone_file")
    voice_id = st.text_input("New voice id", key="pg_clone_id", placeholder="at least 8 letters and digits")
    if st.button("Clone voice", type="primary", disabled=sample is None or not voice_id.strip()):
        request = GenerationRequest(
            category="voice_clone", audio=sample.getvalue(), audio_filename=sample.name, voice=voice_id.strip()
        )
        if result := run_call(user, model_id, provider, request):
            st.success(result.text or f"Voice {result.voice_id} created.")
            draw_cost_card(result)

calls: list[GenerationResult] = st.session_state.get("pg_calls", [])
if calls:
    with st.expander(f"This session's calls ({len(calls)})"):
        table(
            pd.DataFrame(
                [
                    {
                        "model": f"{r.provider}/{r.model_id}",
                        "usage": cost_card(r, credit_usd).usage,
                        "cost": exact_usd(r.base_cost_usd),
                        "credits": r.credits_charged,
                        "simulated": cost_card(r, credit_usd).tag,
                        "latency": r.latency_ms,
                    }
                    for r in calls
                ]
            ),
            {
                "model": ("Model", "text"),
                "usage": ("Usage", "text"),
                "cost": ("Provider cost (exact USD)", "text"),
                "credits": ("Credits charged", "credits"),
                "simulated": ("Simulated or cached", "text"),
                "latency": ("Latency", "ms"),
            },
            key="pg_session_calls",
        )
draw_sidebar_figures()
