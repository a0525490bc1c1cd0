"""The one flow every generation takes: price -> reserve -> call -> settle (DESIGN.md, "The walk of one generation").

1. catalog lookup: the model, its provider and price; an unknown, retired or unpriced model is refused before any call;
2. the most the call can cost (max tokens, text length, audio length, images) is reserved as a credit hold;
3. the provider calls the upstream (or the response cache answers a deterministic request);
4. the actual usage is priced, and `BillingService.settle` writes the usage row and its debit in one transaction;
5. on any failure the hold is released, a failed usage row with 0 credits is written and the typed error is raised.

Sandbox models are priced like the model they mirror and logged with that would-be cost, but never debited.

A caller's idempotency key makes a call happen once: the first request with the key holds the credits and calls the
upstream; the same key sent again (a retry, or the same request from several clients at once) gets the first call's
result and charge back (`GenerationResult.replayed`), waiting for it if the first call is still running
(`core.billing.replays`). Each usage row records where the call came from (`source`) and the API key it came
through, and the key's own limits count its hold.

`core.services` builds one `GenerationFlow` per process (settings, the database, the ledger, the providers with one
shared HTTP client) and calls it for pages, the command line and the gateway after checking who may bill whom.
`GenerationFlow.generate()` returns a `GenerationResult`; `GenerationFlow.stream()` returns a `GenerationStream`:
iterate it for the text chunks (hand it to `st.write_stream`; a chat offered tools also hands on the pieces of the
function calls it makes, as `ToolCallDelta`s), then read its `.result` (a `GenerationResult`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.hook import AlertHook
from core.billing import replays
from core.billing.errors import BudgetExceededError
from core.billing.hold_keeper import HoldKeeper
from core.billing.ledger import BillingService
from core.billing.pricing import price_usage
from core.billing.reconcile import reconcile_usage
from core.billing.types import Hold, Settlement, UsageRecord
from core.catalog.lookup import UnknownModelError, to_model_price
from core.catalog.types import ModelPrice
from core.config import Settings
from core.db.engine import statement_reads
from core.db.models import USAGE_SOURCES, AIModel, utcnow
from core.endpoints.wake import refuse_overdrawn_wake
from core.errors import InvalidInputError
from core.money import apply_markup, usd_to_credits
from core.providers import response_cache
from core.providers.base import BaseProvider
from core.providers.fingerprint import request_fingerprint
from core.providers.openai_compat import guessed_chat_usage
from core.providers.registry import AIProviderFactory
from core.providers.tools import ToolCallDelta, delivered_calls, whole_call_deltas
from core.providers.types import Category, Chunk, GenerationRequest, ProviderResult, ResultStream, TextStream
from core.usage import Usage
from core.users import UserView, get_user

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 500


@dataclass
class GenerationFlow:
    """What a generation needs: settings, the database, the ledger and the providers (one shared HTTP client).
    Built once per process by `core.services`; its two entry points are `generate` and `stream`."""

    settings: Settings
    session_factory: sessionmaker[Session]
    billing: BillingService
    providers: AIProviderFactory
    # Budget and low-balance alerts checked after each settle and on a budget's refusal (records them; delivery is
    # `alerts run`'s, or a BackgroundDelivery given to the hook as on_new). None: no checks.
    alerts: AlertHook | None = None
    # Seconds a catalog entry read for a call is reused by the next calls of the same model (0: read on every call).
    # The gateway sets it (GATEWAY_CACHE_SECONDS): a price or status change then reaches its calls within that time;
    # a call is held and settled at the one price it read.
    catalog_ttl: float = 0.0
    _catalog: dict[tuple[str, str | None], tuple[float, ModelPrice]] = field(default_factory=dict, repr=False)
    # Seconds a payer's account (by id) read for a call is reused by their next calls (0: read on every call); the
    # gateway sets it. What is reused is only the markup the hold is sized with (and the id): the charge is computed
    # at the markup read under the account's lock, so a markup changed within this time is charged as changed (a
    # raise can then exceed the hold, settled and flagged as overage like any overage).
    user_ttl: float = 0.0
    _users: dict[int, tuple[float, UserView]] = field(default_factory=dict, repr=False)

    _reads: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        return self.session_factory.kw["bind"]

    @property
    def reads(self) -> Engine:
        """The engine for the call's lookups (core.db.engine.statement_reads: no transaction round trips)."""
        if self._reads is None:
            self._reads = statement_reads(self.engine)
        return self._reads

    def close(self) -> None:
        self.providers.close()

    def generate(
        self,
        user: UserView | int | str,
        model_id: str,
        request: GenerationRequest,
        *,
        provider: str | None = None,
        idempotency_key: str | None = None,
        origin: Origin | None = None,
    ) -> GenerationResult:
        """Make one billed call of `model_id` for `user` (an id, an email or a UserView). With `request.stream` the
        upstream is called in streaming mode (and read to the end here)."""
        if request.stream:
            stream = self.stream(
                user, model_id, request, provider=provider, idempotency_key=idempotency_key, origin=origin
            )
            for _ in stream:
                pass
            return stream.result
        return _generate(self, user, model_id, request, provider, idempotency_key, origin or Origin())

    def stream(
        self,
        user: UserView | int | str,
        model_id: str,
        request: GenerationRequest,
        *,
        provider: str | None = None,
        idempotency_key: str | None = None,
        origin: Origin | None = None,
    ) -> GenerationStream:
        """Like `generate`, streaming the text. Errors before the first chunk (an unknown model, not enough credits,
        a refused key) raise here; later ones raise while iterating. Non-chat categories yield their text at once."""
        return _generate_stream(self, user, model_id, request, provider, idempotency_key, origin or Origin())

    def count_tokens(self, model_id: str, request: GenerationRequest, *, provider: str | None = None) -> int:
        """The input tokens of a chat `request` on `model_id`, without making the call: the provider's own count
        where its API has one (Anthropic), else the bound the hold would reserve for. Free: no hold, no charge, no
        usage row. An unknown model raises UnknownModelError, a retired or non-chat one InvalidInputError."""
        if Category(request.category) != Category.CHAT:
            raise InvalidInputError(f"Tokens are counted for chat requests; this one is for {request.category}.")
        with self.engine.connect() as conn:
            model = _model(self, conn, model_id, provider)
        _check_servable(model, request)
        return self.providers.get_provider(model.provider).count_input_tokens(model, request)


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where a call comes from: its source (recorded on the usage row) and the API key it came through, if any."""

    source: str = "playground"
    api_key_id: int | None = None

    def __post_init__(self) -> None:
        if self.source not in USAGE_SOURCES:
            raise InvalidInputError(f"Unknown source {self.source!r}; choose one of: {', '.join(USAGE_SOURCES)}.")


@dataclass(frozen=True, kw_only=True)
class GenerationResult:
    """One billed call: the output, its usage and what it cost."""

    text: str | None
    data: bytes | None = field(repr=False)
    mime: str | None
    voice_id: str | None
    usage: Usage
    provider: str
    model_id: str
    model_name: str
    category: str
    # what the upstream charges us (for the sandbox: what the mirrored model would); 0 for a cache hit: the provider
    # was not called (its catalog_cost_usd says what the call would have cost)
    base_cost_usd: Decimal
    catalog_cost_usd: Decimal  # what the call costs at catalog price: base_cost_usd, or what a cache hit would have
    base_credits: int  # the cost the charge was priced at rounded up to whole credits (0 for a cache hit not charged)
    markup_pct: Decimal
    # what the user paid (0 for the sandbox, endpoints and uncharged cache hits); None while `charge_pending`
    credits_charged: int | None
    would_be_credits: int  # catalog cost in credits with markup: what the call costs at catalog price
    balance_after: int | None  # None while `charge_pending`
    transaction_id: int | None
    usage_id: int | None  # None while `charge_pending`
    latency_ms: int
    cache_hit: bool
    sandbox: bool
    request_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False  # the answer of an earlier call with the same idempotency key (charged once, then)
    # the database was unavailable when the call ended: its charge is kept in the settlement spool and posted when the
    # database is back (core/billing/spool.py); what it charged and the balance after are not known yet
    charge_pending: bool = False
    # chat: the functions the answer calls (OpenAI's shape), for the caller to run and answer in its next request
    tool_calls: tuple[dict[str, Any], ...] | None = None
    # when the answer was made (Unix seconds): the API's `created`, the same in a replay as in the first answer
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def estimated(self) -> bool:
        return self.usage.estimated

    def credits_summary(self) -> dict[str, Any]:
        """What the call was charged and the balance after, as the API's answers carry them; while the charge is
        pending both are null and `pending` says so."""
        out: dict[str, Any] = {"charged": self.credits_charged, "remaining": self.balance_after}
        if self.charge_pending:
            out["pending"] = True
        return out

    def to_reply(self) -> dict[str, Any]:
        """Everything but the bytes, as JSON (kept for a retry with the same idempotency key)."""
        return {
            "text": self.text,
            "mime": self.mime,
            "voice_id": self.voice_id,
            "usage": {**self.usage.to_dict(), "seconds": str(self.usage.seconds)},
            "provider": self.provider,
            "model_id": self.model_id,
            "model_name": self.model_name,
            "category": self.category,
            "base_cost_usd": str(self.base_cost_usd),
            "catalog_cost_usd": str(self.catalog_cost_usd),
            "base_credits": self.base_credits,
            "markup_pct": str(self.markup_pct),
            "credits_charged": self.credits_charged,
            "would_be_credits": self.would_be_credits,
            "balance_after": self.balance_after,
            "transaction_id": self.transaction_id,
            "usage_id": self.usage_id,
            "latency_ms": self.latency_ms,
            "cache_hit": self.cache_hit,
            "sandbox": self.sandbox,
            "request_id": self.request_id,
            "metadata": {k: v for k, v in self.metadata.items() if _jsonable(v)},
            "tool_calls": None if self.tool_calls is None else list(self.tool_calls),
            "created": self.created,
        }

    @classmethod
    def from_reply(cls, reply: dict[str, Any], data: bytes | None) -> GenerationResult:
        fields = dict(reply)
        fields["usage"] = Usage.from_dict(fields["usage"])
        fields["base_cost_usd"] = Decimal(fields["base_cost_usd"])
        if "catalog_cost_usd" not in fields:  # kept before the field existed, when a hit's base cost was its price
            fields["catalog_cost_usd"] = fields["base_cost_usd"]
            if fields.get("cache_hit"):
                fields["base_cost_usd"] = Decimal(0)
        fields["catalog_cost_usd"] = Decimal(fields["catalog_cost_usd"])
        fields["markup_pct"] = Decimal(fields["markup_pct"])
        if fields.get("tool_calls") is not None:
            fields["tool_calls"] = tuple(fields["tool_calls"])
        return cls(data=data, replayed=True, **fields)

    def to_dict(self, output: Any = None) -> dict[str, Any]:
        """The result as the command line prints it (`output` replaces the text, e.g. with a file path)."""
        return {
            "output": self.text if output is None else output,
            "tool_calls": None if self.tool_calls is None else list(self.tool_calls),
            "usage": self.usage.to_dict(),
            "base_cost_usd": self.base_cost_usd,
            "catalog_cost_usd": self.catalog_cost_usd,
            "base_credits": self.base_credits,
            "markup_pct": self.markup_pct,
            "credits_charged": self.credits_charged,
            "balance_after": self.balance_after,
            "transaction_id": self.transaction_id,
            "provider": self.provider,
            "model_id": self.model_id,
            "latency_ms": self.latency_ms,
            "cache_hit": self.cache_hit,
            "sandbox": self.sandbox,
            "usage_estimated": self.usage.estimated,
            "would_be_credits": self.would_be_credits,
            "usage_id": self.usage_id,
            "charge_pending": self.charge_pending,
        }


@dataclass(frozen=True)
class _Plan:
    user: UserView
    model: ModelPrice
    provider: BaseProvider
    request: GenerationRequest
    hold_credits: int
    cache_key: str | None
    bound: Usage  # the most the request can consume: the hold's basis and the limit of what is billed
    fingerprint: str  # core.providers.fingerprint: logged on the usage row, so repeated requests can be found later
    origin: Origin

    @property
    def sandbox(self) -> bool:
        return self.provider.simulated


# The hot path reads the catalog with prebuilt Core selects (a third of the ORM's cost per call); the rows carry the
# model's attribute names, so the catalog's own converter builds the frozen view.
_MODEL_BY_ID = select(*AIModel.__table__.columns).where(AIModel.model_id == bindparam("model_id")).order_by(AIModel.id)
_MODEL_BY_ID_AND_PROVIDER = _MODEL_BY_ID.where(AIModel.provider == bindparam("provider"))


MAX_KEPT_USERS = 10_000  # accounts whose view a process keeps (GenerationFlow.user_ttl); then it starts over


def _lookup(
    svc: GenerationFlow, user: UserView | int | str, model_id: str, provider: str | None
) -> tuple[UserView, ModelPrice]:
    """The payer and the catalog entry: read together in one connection, or taken from what the last `user_ttl` and
    `catalog_ttl` seconds read (then no connection at all)."""
    now = time.monotonic()
    who = _kept(svc._users, user, now, svc.user_ttl) if isinstance(user, int) else None
    model = _kept(svc._catalog, (model_id, provider), now, svc.catalog_ttl)
    if who is None or model is None:
        with svc.reads.connect() as conn:
            if who is None:
                who = get_user(conn, user)
                if svc.user_ttl > 0 and isinstance(user, int):
                    if len(svc._users) >= MAX_KEPT_USERS:
                        svc._users.clear()
                    svc._users[user] = (now, who)
            if model is None:
                model = _model(svc, conn, model_id, provider)
    return who, model


def _kept(kept: dict[Any, tuple[float, Any]], key: Any, now: float, ttl: float) -> Any:
    """What `kept` holds under `key` if it was read less than `ttl` seconds ago, else None."""
    found = kept.get(key) if ttl > 0 else None
    return found[1] if found is not None and now - found[0] < ttl else None


def _model(svc: GenerationFlow, conn: Connection, model_id: str, provider: str | None) -> ModelPrice:
    """The catalog entry, reused for `catalog_ttl` seconds once read."""
    now = time.monotonic()
    kept = _kept(svc._catalog, (model_id, provider), now, svc.catalog_ttl)
    if kept is not None:
        return kept
    model = _catalog_entry(conn, model_id, provider)
    if svc.catalog_ttl > 0:  # only models found are kept: their number is the catalog's, not the callers' choice
        svc._catalog[(model_id, provider)] = (now, model)
    return model


def _catalog_entry(conn: Connection, model_id: str, provider: str | None) -> ModelPrice:
    if provider:
        rows = list(conn.execute(_MODEL_BY_ID_AND_PROVIDER, {"model_id": model_id, "provider": provider}))
    else:
        rows = list(conn.execute(_MODEL_BY_ID, {"model_id": model_id}))
    if not rows:
        where_p = f" from provider {provider!r}" if provider else ""
        raise UnknownModelError(
            f"Unknown model {model_id!r}{where_p}: it is not in the catalog. "
            "`python -m core models list` shows the choices."
        )
    # The same id served serverless and dedicated: prefer the serverless/API entry unless the provider says otherwise.
    rows.sort(key=lambda r: r.deployment_type == "dedicated")
    return to_model_price(rows[0])  # type: ignore[arg-type]


def _check_servable(model: ModelPrice, request: GenerationRequest) -> None:
    if model.status != "active":
        raise InvalidInputError(f"{model.key} is {model.status}; choose an active model.")
    if Category(request.category) != model.category:
        raise InvalidInputError(f"{model.key} is a {model.category} model; this request is for {request.category}.")


def _prepare(
    svc: GenerationFlow,
    user: UserView | int | str,
    model_id: str,
    request: GenerationRequest,
    provider: str | None,
    origin: Origin,
) -> _Plan:
    """Everything checked before any credit is held or any upstream called."""
    who, model = _lookup(svc, user, model_id, provider)
    _check_servable(model, request)
    prov = svc.providers.get_provider(model.provider)
    prov.validate(model, request)
    estimate = prov.estimate_max_usage(model, request)
    most_usd = price_usage(model, estimate)  # an unpriced model raises UnpricedModelError here
    hold = (
        0
        if prov.simulated
        else apply_markup(usd_to_credits(most_usd, svc.settings.credit_usd), who.developer_markup_pct)
    )
    fingerprint = request_fingerprint(model, request)
    settings = svc.settings
    cache_key = (  # per user unless the administrator shares entries (core.providers.response_cache)
        response_cache.entry_key(fingerprint, who.id, shared=settings.response_cache_shared)
        if response_cache.cacheable(model, request) and settings.response_cache_max_mb > 0
        else None
    )
    return _Plan(who, model, prov, request, hold, cache_key, estimate, fingerprint, origin)


def _refuse_waking_for_the_overdrawn(svc: GenerationFlow, plan: _Plan) -> None:
    """A dedicated endpoint scaled to zero is woken by the call, and its uptime charged to its owner: refused while
    that owner is overdrawn (core.endpoints.wake). Checked after the cache, whose answers wake nothing."""
    if plan.model.provider != "huggingface_endpoint":
        return
    with svc.engine.connect() as conn:
        refuse_overdrawn_wake(conn, plan.model, plan.request.endpoint_url or plan.model.hf_endpoint_url)


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _reserve(svc: GenerationFlow, plan: _Plan, idempotency_key: str | None) -> Hold:
    """The call's hold; `reused` when the caller's idempotency key already has one (the call was made, or is being
    made, by an earlier request: its result is replayed instead of calling again)."""
    key = idempotency_key or f"gen-{uuid.uuid4().hex}"
    try:
        return svc.billing.reserve(plan.user.id, plan.hold_credits, key, api_key_id=plan.origin.api_key_id)
    except BudgetExceededError as exc:
        if svc.alerts is not None:
            svc.alerts.after_refusal(exc, plan.user.id)
        raise


def _replayed(svc: GenerationFlow, plan: _Plan, hold: Hold) -> GenerationResult:
    """The result of the earlier call that holds this idempotency key (waiting for it while it runs)."""
    left = (hold.expires_at - utcnow()).total_seconds()
    reply = replays.wait_for_reply(
        svc.engine,
        hold_id=hold.id,
        user_id=plan.user.id,
        key=hold.idempotency_key,
        fingerprint=plan.fingerprint,
        timeout=max(left, 0.0),
        spooled=lambda: svc.billing.settle_waits_in_spool(hold),
    )
    return GenerationResult.from_reply(reply.result, reply.data)


def _keep_reply(svc: GenerationFlow, plan: _Plan, hold: Hold, result: GenerationResult, caller_key: str | None) -> None:
    """Keep the answer of a call made with the caller's idempotency key, for a retry with the same key."""
    if caller_key is None or result.charge_pending:  # pending: kept with its settlement in the spool
        return
    try:
        replays.store(
            svc.engine,
            user_id=plan.user.id,
            key=hold.idempotency_key,
            fingerprint=plan.fingerprint,
            result=result.to_reply(),
            data=result.data,
        )
    except Exception:
        log.exception("could not keep the reply of hold %s for its idempotency key", hold.id)


def _release(svc: GenerationFlow, plan: _Plan, hold: Hold, exc: BaseException, latency_ms: int) -> None:
    """Give the held credits back and record the failed call (0 credits); kept in the settlement spool while the
    database is unavailable. Never hides the original error."""
    failure = UsageRecord(
        model=plan.model,
        usage=Usage(),
        base_cost_usd=Decimal(0),
        status="failed",
        error=_error_text(exc),
        latency_ms=latency_ms,
        sandbox=plan.sandbox,
        request_fingerprint=plan.fingerprint,
        api_key_id=plan.origin.api_key_id,
        source=plan.origin.source,
        metadata={"error_type": type(exc).__name__},
    )
    try:
        svc.billing.release_or_spool(hold, failure=failure)
    except Exception:
        log.exception("could not release hold %s after a failed call", hold.id)


def _settle(
    svc: GenerationFlow,
    plan: _Plan,
    hold: Hold,
    result: ProviderResult,
    latency_ms: int,
    *,
    cache_hit: bool = False,
    caller_key: str | None = None,
) -> GenerationResult:
    """Bill the call's result; with the caller's idempotency key its answer is kept for a retry (`_keep_reply`, or
    with its settlement in the spool while the database is unavailable)."""
    model = plan.model
    try:
        base_cost = price_usage(model, result.usage)
    except BaseException as exc:  # e.g. a rate the catalog lacks: refused, the hold released, never a $0 success
        _release(svc, plan, hold, exc, latency_ms)
        raise
    metadata: dict[str, Any] = {k: v for k, v in result.metadata.items() if _jsonable(v)}
    # The record's base cost is the cost the charge is priced at: for a cache hit its catalog cost when hits are
    # charged, else 0 with the catalog cost in metadata `catalog_cost_usd`. The usage row stores a hit's provider cost
    # as 0 either way, with its catalog cost in that metadata (core/billing/usage_rows.py): spend analytics counts it
    # as the cache saving (core/analytics/schema.py). The caller's GenerationResult says the same (`_result`).
    charged_cost = base_cost
    if cache_hit and not svc.settings.charge_cache_hits:
        charged_cost = Decimal(0)
        metadata["catalog_cost_usd"] = str(base_cost)
    if plan.sandbox:
        metadata["mirrors"] = model.mirrors
    record = UsageRecord(
        model=model,
        usage=result.usage,
        base_cost_usd=charged_cost,
        latency_ms=latency_ms,
        cache_hit=cache_hit,
        sandbox=plan.sandbox,
        request_id=result.request_id,
        request_fingerprint=plan.fingerprint,
        api_key_id=plan.origin.api_key_id,
        source=plan.origin.source,
        metadata=metadata,
    )
    hit_cost = base_cost if cache_hit else None

    def pending() -> GenerationResult:
        return _pending(plan, hold, result, record, latency_ms, hit_cost, svc.settings.credit_usd)

    def answer() -> replays.PendingReply:
        kept = pending()
        return replays.PendingReply(fingerprint=plan.fingerprint, result=kept.to_reply(), data=kept.data)

    try:
        # the output exists and is delivered: a database that stays unavailable defers the charge, never drops it
        settlement = svc.billing.settle_or_spool(hold, record, reply=answer if caller_key is not None else None)
    except BaseException as exc:
        _release(svc, plan, hold, exc, latency_ms)
        raise
    if settlement is None:
        return pending()
    if svc.alerts is not None:
        svc.alerts.after_settle(
            plan.user.id,
            charged=settlement.credits_charged,
            balance_after=settlement.balance_after,
            api_key_id=plan.origin.api_key_id,  # a budget on the key the call came through counts it too
            budgets=hold.budgeted,
        )
    billed = _result(plan, result, settlement, latency_ms, hit_cost, svc.settings.credit_usd)
    _keep_reply(svc, plan, hold, billed, caller_key)
    return billed


def _checked(plan: _Plan, out: ProviderResult) -> ProviderResult:
    """The provider's result with its usage checked against what the request allowed (core.billing.reconcile)."""
    checked = reconcile_usage(plan.model, out.usage, plan.bound)
    if checked.usage is out.usage:
        return out
    return replace(out, usage=checked.usage, metadata={**out.metadata, **checked.metadata()})


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def _result(
    plan: _Plan, out: ProviderResult, st: Settlement, latency_ms: int, hit_cost: Decimal | None, credit_usd: Decimal
) -> GenerationResult:
    """The caller's view of a settled call; `hit_cost` is a cache hit's catalog cost (None: the provider was called).

    A cache hit's provider cost is 0 (the provider billed nothing for it), whatever it was charged."""
    catalog = st.base_cost_usd if hit_cost is None else hit_cost
    would_be = (
        apply_markup(st.base_credits, st.markup_pct)
        if hit_cost is None
        else apply_markup(usd_to_credits(hit_cost, credit_usd), st.markup_pct)
    )
    return GenerationResult(
        text=out.text,
        data=out.data,
        mime=out.mime,
        voice_id=out.voice_id,
        usage=out.usage,
        provider=plan.model.provider,
        model_id=plan.model.model_id,
        model_name=plan.model.model_name,
        category=plan.model.category,
        base_cost_usd=st.base_cost_usd if hit_cost is None else Decimal(0),
        catalog_cost_usd=catalog,
        base_credits=st.base_credits,
        markup_pct=st.markup_pct,
        credits_charged=st.credits_charged,
        would_be_credits=would_be,
        balance_after=st.balance_after,
        transaction_id=st.transaction.id if st.transaction else None,
        usage_id=st.usage_id,
        latency_ms=latency_ms,
        cache_hit=hit_cost is not None,
        sandbox=plan.sandbox,
        request_id=out.request_id,
        metadata=dict(out.metadata),
        tool_calls=out.tool_calls,
    )


def _pending(
    plan: _Plan,
    hold: Hold,
    out: ProviderResult,
    record: UsageRecord,
    latency_ms: int,
    hit_cost: Decimal | None,
    credit_usd: Decimal,
) -> GenerationResult:
    """The caller's view of a call whose settlement waits in the spool: its costs are known, its charge is not yet
    (the ledger computes it when it posts the settlement)."""
    markup = hold.markup_pct if hold.markup_pct is not None else plan.user.developer_markup_pct
    base = record.base_cost_usd
    priced = Settlement(
        usage_id=0,
        transaction=None,
        base_cost_usd=base,
        base_credits=usd_to_credits(base, credit_usd),
        markup_pct=markup,
        credits_charged=0,
        balance_after=0,
        overage=False,
    )
    result = _result(plan, out, priced, latency_ms, hit_cost, credit_usd)
    return replace(result, credits_charged=None, balance_after=None, usage_id=None, charge_pending=True)


def _elapsed_ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


def _from_cache(svc: GenerationFlow, plan: _Plan, idempotency_key: str | None) -> GenerationResult | None:
    if plan.cache_key is None:
        return None
    t0 = time.perf_counter()
    cached = response_cache.lookup(
        svc.session_factory, plan.cache_key, max_age_seconds=svc.settings.response_cache_max_age_seconds
    )
    if cached is None:
        return None
    out = ProviderResult(usage=cached.usage, text=cached.text, data=cached.data, mime=cached.mime)
    cost = price_usage(plan.model, cached.usage) if svc.settings.charge_cache_hits else Decimal(0)
    exact = apply_markup(usd_to_credits(cost, svc.settings.credit_usd), plan.user.developer_markup_pct)
    hold = _reserve(svc, replace(plan, hold_credits=exact, cache_key=None), idempotency_key)
    if hold.reused:
        return _replayed(svc, plan, hold)
    response_cache.record_hit(svc.session_factory, plan.cache_key)
    return _settle(svc, plan, hold, out, _elapsed_ms(t0), cache_hit=True, caller_key=idempotency_key)


def _maybe_store(svc: GenerationFlow, plan: _Plan, result: ProviderResult) -> None:
    if plan.cache_key is None:
        return
    try:
        response_cache.store(
            svc.session_factory,
            plan.cache_key,
            plan.model,
            result,
            max_bytes=svc.settings.response_cache_max_mb * response_cache.MB,
            max_age_seconds=svc.settings.response_cache_max_age_seconds,
        )
    except Exception:
        log.exception("could not store a response in the cache")  # the call itself succeeded and is billed


def _generate(
    svc: GenerationFlow,
    user: UserView | int | str,
    model_id: str,
    request: GenerationRequest,
    provider: str | None,
    idempotency_key: str | None,
    origin: Origin,
) -> GenerationResult:
    plan = _prepare(svc, user, model_id, request, provider, origin)
    cached = _from_cache(svc, plan, idempotency_key)
    if cached is not None:
        return cached
    _refuse_waking_for_the_overdrawn(svc, plan)
    hold = _reserve(svc, plan, idempotency_key)
    if hold.reused:
        return _replayed(svc, plan, hold)
    t0 = time.perf_counter()
    try:
        out = _checked(plan, plan.provider.generate(plan.model, request))
    except BaseException as exc:
        _release(svc, plan, hold, exc, _elapsed_ms(t0))
        raise
    result = _settle(svc, plan, hold, out, _elapsed_ms(t0), caller_key=idempotency_key)
    _maybe_store(svc, plan, out)
    return result


class GenerationStream(ResultStream[GenerationResult]):
    """Text chunks as they arrive; once exhausted, `.result` is the billed `GenerationResult`.

    Stopping early (`close()`, or the page being left mid-stream) settles what was received, flagged as estimated:
    the upstream has produced, and billed, those tokens. `replayed`: the stream replays the answer an earlier request
    with the same idempotency key was billed for (known before its first chunk, as the gateway's headers need it).
    """

    replayed = False


def _generate_stream(
    svc: GenerationFlow,
    user: UserView | int | str,
    model_id: str,
    request: GenerationRequest,
    provider: str | None,
    idempotency_key: str | None,
    origin: Origin,
) -> GenerationStream:
    plan = _prepare(svc, user, model_id, request, provider, origin)
    cached = _from_cache(svc, plan, idempotency_key)
    if cached is not None:
        return _replay_stream(cached)
    _refuse_waking_for_the_overdrawn(svc, plan)
    hold = _reserve(svc, plan, idempotency_key)
    if hold.reused:
        return _replay_stream(_replayed(svc, plan, hold))
    t0 = time.perf_counter()
    try:
        upstream = plan.provider.stream(plan.model, request)
    except BaseException as exc:
        _release(svc, plan, hold, exc, _elapsed_ms(t0))
        raise
    drive = _drive(svc, plan, hold, upstream, time.perf_counter() - t0, idempotency_key)
    return GenerationStream(drive, source=upstream)  # the upstream's stated prompt counts, once it states them


def _replay_stream(result: GenerationResult) -> GenerationStream:
    """A result already billed, as a stream of its text and its function calls (each whole); its prompt counts are
    known from the start (unless they were estimated)."""

    def replay() -> Generator[Chunk, None, GenerationResult]:
        if result.text:
            yield result.text
        yield from whole_call_deltas(result.tool_calls)
        return result

    u = result.usage
    stream = GenerationStream(replay(), stated_input=None if u.estimated else replace(u, output_tokens=0))
    stream.replayed = result.replayed
    return stream


def _drive(
    svc: GenerationFlow, plan: _Plan, hold: Hold, upstream: TextStream, setup_s: float, caller_key: str | None
) -> Generator[Chunk, None, GenerationResult]:
    # Latency is the upstream's time (sending the request, then waiting for each chunk): the time the reader takes
    # before and between chunks (e.g. drawing them) is not counted. The hold lives as long as the stream does, up to
    # MAX_CALL_SECONDS; a stream still running then is stopped and billed for what it delivered.
    keeper = HoldKeeper(
        svc.billing, hold, ttl_seconds=svc.settings.hold_ttl_seconds, max_call_seconds=svc.settings.max_call_seconds
    )
    received: list[str] = []
    calls: list[ToolCallDelta] = []  # the pieces of function calls handed on (a chat offered tools)
    upstream_s = setup_s
    t = time.perf_counter()
    try:
        while True:
            t = time.perf_counter()
            try:
                chunk = next(upstream)
            except StopIteration:
                upstream_s += time.perf_counter() - t
                break
            upstream_s += time.perf_counter() - t
            if isinstance(chunk, str):
                received.append(chunk)
            else:
                calls.append(chunk)
            keeper.tick()
            yield chunk
            if keeper.out_of_time():
                upstream.close()
                limit = f"stopped at the call's time limit (MAX_CALL_SECONDS={svc.settings.max_call_seconds})"
                ms = int(upstream_s * 1000)
                return _settle_cancelled(
                    svc, plan, hold, "".join(received), ms, reason=limit, calls=calls, stated=upstream.stated_input
                )
    except GeneratorExit:
        upstream.close()
        ms = int(upstream_s * 1000)
        _settle_cancelled(svc, plan, hold, "".join(received), ms, calls=calls, stated=upstream.stated_input)
        raise
    except BaseException as exc:
        _release(svc, plan, hold, exc, int((upstream_s + time.perf_counter() - t) * 1000))
        raise
    out = _checked(plan, upstream.result)
    result = _settle(svc, plan, hold, out, int(upstream_s * 1000), caller_key=caller_key)
    _maybe_store(svc, plan, out)
    return result


def _settle_cancelled(
    svc: GenerationFlow,
    plan: _Plan,
    hold: Hold,
    text: str,
    latency_ms: int,
    *,
    reason: str = "stopped by reader",
    calls: Sequence[ToolCallDelta] = (),
    stated: Usage | None = None,
) -> GenerationResult | None:
    """The stream was stopped mid-way: bill what was received so far (its text and the pieces of function calls,
    estimated), or release if there was nothing. `stated`: the prompt's counts as the upstream stated them before its
    first chunk (input, cache reads and writes), which replace the estimate of the prompt."""
    try:
        delivered = text + delivered_calls(calls)
        if not delivered or Category(plan.request.category) != Category.CHAT:
            _release(svc, plan, hold, RuntimeError("the stream was stopped before any output"), latency_ms)
            return None
        usage = guessed_chat_usage(plan.request, delivered)
        if stated is not None:  # the prompt's counts the upstream stated (Claude's message_start): billed as stated
            usage = replace(stated, output_tokens=max(usage.output_tokens, stated.output_tokens), estimated=True)
        out = ProviderResult(text=text, usage=usage, metadata={"incomplete": True, "stream_error": reason})
        return _settle(svc, plan, hold, _checked(plan, out), latency_ms)
    except Exception:
        log.exception("could not settle hold %s after a stream was stopped (%s)", hold.id, reason)
        return None
