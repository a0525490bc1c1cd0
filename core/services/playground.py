"""Playground: what the page shows, computed here so the page only reads widgets and draws.

The models offered, by category: those of providers whose key is configured, plus the sandbox (always offered, so the
app works out of the box); whose credits a call may use; the cost card of a call, the session's totals, compare mode
(one input on 2-3 models), and a chat message's attached images as content parts. The calls themselves go through the
generation service, which checks who pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.access import Caller, Capability, guarded
from core.catalog.lookup import list_models
from core.catalog.types import ModelPrice
from core.errors import CoreError, InvalidInputError
from core.generate import GenerationResult
from core.money import credits_text, credits_to_usd, price_text
from core.providers.images import FILE_TYPES, file_part
from core.providers.types import GenerationRequest
from core.usage import Usage
from core.users import UserView, get_user, list_users

if TYPE_CHECKING:
    from core.services.container import Services

CATEGORY_LABELS = {
    "chat": "Chat",
    "tts": "Text to speech",
    "speech_to_text": "Speech to text",
    "image": "Image",
    "music": "Music",
    "voice_clone": "Voice clone",
}
MAX_COMPARE = 3


@dataclass(frozen=True, kw_only=True)
class PlaygroundCatalog:
    models: dict[str, list[ModelPrice]]  # category -> models offered, real providers first, the sandbox last
    unconfigured: dict[str, str]  # provider -> why it is not offered (missing key, retired URL)

    def providers(self, category: str) -> list[str]:
        seen: list[str] = []
        for m in self.models.get(category, []):
            if m.provider not in seen:
                seen.append(m.provider)
        return seen

    def models_of(self, category: str, provider: str) -> list[ModelPrice]:
        return [m for m in self.models.get(category, []) if m.provider == provider]

    def categories(self) -> list[str]:
        return [c for c in CATEGORY_LABELS if self.models.get(c)]


IMAGE_FILE_TYPES = tuple(FILE_TYPES)  # what a chat message may attach (core/providers/images.py)


def chat_content(text: str, images: Sequence[tuple[str, bytes]] = ()) -> str | list[dict[str, Any]]:
    """A chat message's content: its text, or, with images attached ((file name, bytes) each), the text and the
    images as OpenAI's content parts (base64 data URLs), as the gateway sends them."""
    if not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [file_part(name, data) for name, data in images]


def describe_usage(usage: Usage, category: str = "") -> str:
    """Usage in words: "1,200 in (1,000 cached) / 45 out tokens", "240 characters", "3.2 s of audio", ..."""
    parts: list[str] = []
    if usage.input_tokens or usage.output_tokens:
        cached = []
        if usage.cached_tokens:
            cached.append(f"{usage.cached_tokens:,} cached")
        if usage.cache_write_tokens:
            cached.append(f"{usage.cache_write_tokens:,} cache-write")
        extra = f" ({', '.join(cached)})" if cached else ""
        parts.append(f"{usage.input_tokens:,} in{extra} / {usage.output_tokens:,} out tokens")
    if usage.characters:
        parts.append(f"{usage.characters:,} characters")
    if usage.seconds:
        what = "compute" if category == "chat" else "audio"
        parts.append(f"{usage.seconds.normalize():f} s of {what}")
    if usage.images:
        spec = " ".join(x for x in (usage.image_quality, usage.image_size) if x)
        parts.append(f"{usage.images} image{'s' if usage.images != 1 else ''}" + (f" ({spec})" if spec else ""))
    if not parts:
        parts.append(f"{usage.requests} request{'s' if usage.requests != 1 else ''}")
    text = "; ".join(parts)
    return text + (" — estimated" if usage.estimated else "")


@dataclass(frozen=True, kw_only=True)
class CostCard:
    usage: str
    base_cost_usd: Decimal  # the provider's cost: 0 for a cache hit, for which the provider was not called
    catalog_cost_usd: Decimal  # what the call costs at catalog price (for a cache hit: what it would have cost)
    cache_hit: bool
    base_credits: int
    markup_pct: Decimal
    credits_charged: int  # 0 while `pending`
    charged_usd: Decimal
    would_be_credits: int
    would_be_usd: Decimal  # the would-be credits in dollars: what the real call would take from the balance
    priced_as: str  # the model whose prices apply: the call's own, or the real model a sandbox twin mirrors
    balance_after: int | None  # None while `pending`
    latency_ms: int
    note: str  # why nothing, or something unusual, was charged
    tag: str  # a short word on an unusual call for a list of calls ("" for an ordinary one)
    pending: bool = False  # the database was unavailable: the charge waits in the spool, posted when it is back


def cost_card(result: GenerationResult, credit_usd: Decimal) -> CostCard:
    notes = []
    tag = ""
    priced_as = str(result.metadata.get("mirrors") or f"{result.provider}/{result.model_id}")
    if result.sandbox:
        notes.append(
            f"Simulated by the sandbox: no model was called and nothing was charged. Priced as {priced_as}: the real "
            f"call would cost {credits_text(result.would_be_credits)}."
        )
        tag = "simulated, not charged"
    elif result.cache_hit:
        catalog = f"${price_text(result.catalog_cost_usd, 9)}"
        tag = f"cached: provider not called ({catalog} at catalog price)"
        would = f"At catalog price it would have cost {catalog}"
        if result.credits_charged:
            would += ", and was charged as if called (base credits are of that cost)."
        elif result.catalog_cost_usd > 0:
            would += f" ({credits_text(result.would_be_credits)}); cache hits are not charged here."
        notes.append(f"Served from the response cache: the provider was not called and billed nothing. {would}")
    if (
        result.credits_charged == 0
        and not result.sandbox
        and result.base_cost_usd == 0
        and result.provider.endswith("endpoint")
    ):
        notes.append("Dedicated endpoints are billed by uptime, not per request.")
    if result.usage.estimated:
        notes.append("The provider did not state the usage (the stream ended early): it is estimated.")
    if result.charge_pending:
        notes.append(
            "The database was unavailable when the call ended: its charge is kept on this server and posted when "
            f"the database is back (at this markup about {credits_text(result.would_be_credits)})."
        )
        tag = tag or "charge pending"
    charged = result.credits_charged or 0
    return CostCard(
        usage=describe_usage(result.usage, result.category),
        base_cost_usd=result.base_cost_usd,
        catalog_cost_usd=result.catalog_cost_usd,
        cache_hit=result.cache_hit,
        base_credits=result.base_credits,
        markup_pct=result.markup_pct,
        credits_charged=charged,
        charged_usd=credits_to_usd(charged, credit_usd),
        would_be_credits=result.would_be_credits,
        would_be_usd=credits_to_usd(result.would_be_credits, credit_usd),
        priced_as=priced_as,
        balance_after=result.balance_after,
        latency_ms=result.latency_ms,
        note=" ".join(notes),
        tag=tag,
        pending=result.charge_pending,
    )


@dataclass(frozen=True, kw_only=True)
class SessionTotals:
    calls: int
    credits: int
    usd: Decimal
    would_be_credits: int  # sandbox calls included at what they would cost
    pending: int = 0  # calls whose charge waits in the spool (not in `credits` until it is posted)


def session_totals(results: Sequence[GenerationResult], credit_usd: Decimal) -> SessionTotals:
    credits = sum(r.credits_charged or 0 for r in results)
    return SessionTotals(
        calls=len(results),
        credits=credits,
        usd=credits_to_usd(credits, credit_usd),
        would_be_credits=sum(
            r.would_be_credits if r.sandbox or r.charge_pending else r.credits_charged or 0 for r in results
        ),
        pending=sum(1 for r in results if r.charge_pending),
    )


@dataclass(frozen=True, kw_only=True)
class CompareEntry:
    model: ModelPrice
    result: GenerationResult | None
    error: str | None


@dataclass(frozen=True, kw_only=True)
class CompareRow:
    """One compared call as the summary shows it. For a sandbox twin the credits are what the real model would
    charge (the call itself charged nothing): that is what a comparison is for."""

    model_name: str
    priced_as: str  # the real model whose prices apply: itself, or the one a sandbox twin mirrors
    simulated: bool
    cached: bool  # answered by the response cache: the provider was not called
    provider_cost_usd: Decimal  # exact, before rounding to whole credits (0 for a cache hit)
    credits: int  # charged, or for a simulated call what the real call would charge
    credits_usd: Decimal  # those credits in dollars
    credits_charged: int  # what this call actually took from the balance (0 for the sandbox)
    latency_ms: int
    cheapest: bool
    fastest: bool


@dataclass(frozen=True, kw_only=True)
class CompareSummary:
    rows: list[CompareRow]
    rounding_note: str | None  # set when whole credits hide a large difference in provider cost
    simulated_note: str | None  # set when any call was simulated: what its latency and credits mean
    tie_note: str | None = None  # set when the real calls took the same time, so none is marked the fastest


ROUNDING_NOTE_RATIO = Decimal(2)  # provider costs at least this far apart yet the same credits: say why


def compare_summary(entries: Sequence[CompareEntry], credit_usd: Decimal) -> CompareSummary:
    """The compared calls side by side: the cheapest (fewest credits, then the lowest exact cost) and the fastest
    marked, and a sentence when rounding to whole credits made very different provider costs cost the same.

    Only real calls compete for the fastest: a simulated call's latency is the sandbox making up an answer offline
    (a few milliseconds, often equal), which says nothing about the model, so it is never marked the fastest (nor
    beats a real call to it), and calls that are all simulated have no fastest at all."""
    done = [e for e in entries if e.result is not None]
    if not done:
        return CompareSummary(rows=[], rounding_note=None, simulated_note=None)

    def credits_of(r: GenerationResult) -> int:  # a pending charge: what the call costs at this markup
        return r.would_be_credits if r.sandbox or r.credits_charged is None else r.credits_charged

    results = [e.result for e in done if e.result is not None]
    # ties on credits go to the model whose call costs least at catalog price (a cache hit's provider cost is 0)
    cheapest = min(range(len(results)), key=lambda i: (credits_of(results[i]), results[i].catalog_cost_usd))
    real = [i for i, r in enumerate(results) if not r.sandbox]
    fastest, tied = -1, False  # -1: nobody is marked the fastest
    if len(real) > 1:
        fastest = min(real, key=lambda i: results[i].latency_ms)
        tied = [results[i].latency_ms for i in real].count(results[fastest].latency_ms) > 1
        fastest = -1 if tied else fastest  # a tie for the first place: nobody is the fastest
    rows = [
        CompareRow(
            model_name=e.model.model_name,
            priced_as=e.model.mirrors or e.model.key,
            simulated=r.sandbox,
            cached=r.cache_hit,
            provider_cost_usd=r.base_cost_usd,
            credits=credits_of(r),
            credits_usd=credits_to_usd(credits_of(r), credit_usd),
            credits_charged=r.credits_charged or 0,
            latency_ms=r.latency_ms,
            cheapest=i == cheapest,
            fastest=i == fastest,
        )
        for i, (e, r) in enumerate(zip(done, results, strict=True))
    ]
    note = None
    same_credits = len({row.credits for row in rows}) == 1
    costs = [row.provider_cost_usd for row in rows]
    if len(rows) > 1 and same_credits and min(costs) > 0 and max(costs) / min(costs) >= ROUNDING_NOTE_RATIO:
        ratio = max(costs) / min(costs)
        count = {2: "Two", 3: "Three"}.get(len(rows), str(len(rows)))
        note = (
            f"{count} calls differing {ratio:.0f}x in provider cost all cost {credits_text(rows[0].credits)}: "
            f"whole-credit rounding (1 credit = ${credit_usd.normalize():f}, and every call costs at least one "
            "credit before the markup). At volume the difference is real: compare the exact costs."
        )
    simulated = None
    if any(row.simulated for row in rows):
        simulated = (
            "Simulated calls ran in the sandbox: no model was called and nothing was charged. Their cost is what the "
            "real model would charge for the same usage. Their latency is the sandbox's own time to make up an answer, "
            "not the real model's, so none of them is marked the fastest."
        )
    tie = None
    if tied:
        best = min(results[i].latency_ms for i in real)
        tie = f"Two or more calls tied for the fastest ({best:,} ms): none is marked the fastest."
    return CompareSummary(rows=rows, rounding_note=note, simulated_note=simulated, tie_note=tie)


COMPARE_CATEGORIES = ("chat", "tts", "image", "speech_to_text")  # one input, sent to every model


def compare_request(
    category: str,
    prompt: str | None,
    *,
    audio: bytes | None = None,
    audio_filename: str | None = None,
    audio_mime: str | None = None,
    max_tokens: int | None = None,
) -> GenerationRequest:
    """The one request every compared model gets."""
    if category == "speech_to_text":
        if not audio:
            raise InvalidInputError("Upload an audio file to transcribe with each model.")
        return GenerationRequest(category=category, audio=audio, audio_filename=audio_filename, audio_mime=audio_mime)
    if not (prompt or "").strip():
        raise InvalidInputError("Write the prompt to send to each model.")
    return GenerationRequest(category=category, text=prompt, max_tokens=max_tokens if category == "chat" else None)


class PlaygroundService:
    def __init__(self, services: Services) -> None:
        self._s = services

    @guarded(Capability.USE_PLAYGROUND)
    def catalog(self, caller: Caller) -> PlaygroundCatalog:
        """The models offered, by category (real providers first, the sandbox last), and why others are not."""
        problems = self._s.providers.configuration_problems()
        with self._s.db.session() as s:
            models = list_models(s)
        offered: dict[str, list[ModelPrice]] = {}
        for m in models:
            if m.provider in problems:
                continue
            if m.deployment_type == "dedicated" and not m.hf_endpoint_url:
                continue  # a dedicated model is callable once its endpoint exists (the Endpoints page records the URL)
            offered.setdefault(m.category, []).append(m)
        for items in offered.values():
            items.sort(key=lambda m: (m.provider == "sandbox", m.provider, m.model_name))
        return PlaygroundCatalog(models=offered, unconfigured=problems)

    @guarded(None, always=Capability.USE_PLAYGROUND, scoped=(Capability.GENERATE_FOR_OTHERS,))
    def payers(self, caller: Caller) -> list[UserView]:
        """Whose credits a call may use: one's own, or anyone's (oneself first) for a role that may bill others."""
        with self._s.db.session() as s:
            if caller.can(Capability.GENERATE_FOR_OTHERS):
                users = list_users(s)
                own = getattr(caller, "user_id", None)
                return sorted(users, key=lambda u: u.id != own)
            return [get_user(s, caller.user_id)]  # type: ignore[union-attr]

    @guarded(Capability.VIEW_ALL_SPEND, own="user")
    def available_credits(self, caller: Caller, user: int | str) -> int:
        """What a new call billed to `user` may spend now (balance minus credits held by calls in flight)."""
        return self._s.billing.balance(user).available

    @guarded(Capability.GENERATE_FOR_OTHERS, own="user", always=Capability.USE_PLAYGROUND)
    def compare(
        self,
        caller: Caller,
        user: UserView | int | str,
        models: Sequence[ModelPrice],
        prompt: str | None = None,
        *,
        category: str = "chat",
        audio: bytes | None = None,
        audio_filename: str | None = None,
        audio_mime: str | None = None,
        max_tokens: int | None = None,
    ) -> list[CompareEntry]:
        """The same input on 2-3 models of one category at once: a chat prompt, a text to speak, an image prompt, or
        an audio file to transcribe. Each call is billed on its own; a failure stops no other."""
        if category not in COMPARE_CATEGORIES:
            raise InvalidInputError(f"Compare mode takes {', '.join(COMPARE_CATEGORIES)} models, not {category!r}.")
        if not 2 <= len(models) <= MAX_COMPARE:
            raise InvalidInputError(f"Compare two or three models (got {len(models)}).")
        other = [f"{m.provider}/{m.model_id}" for m in models if m.category != category]
        if other:
            raise InvalidInputError(f"{', '.join(other)} is not a {category} model; compare models of one category.")
        request = compare_request(
            category, prompt, audio=audio, audio_filename=audio_filename, audio_mime=audio_mime, max_tokens=max_tokens
        )
        generation = self._s.generation

        def one(model: ModelPrice) -> CompareEntry:
            try:
                result = generation.generate(caller, user, model.model_id, request, provider=model.provider)
                return CompareEntry(model=model, result=result, error=None)
            except CoreError as exc:
                return CompareEntry(model=model, result=None, error=str(exc))

        with ThreadPoolExecutor(max_workers=len(models)) as pool:
            return list(pool.map(one, models))
