"""API keys: everyone creates, lists and revokes their own keys (admins everyone's), and the gateway turns a request's
key into the principal it acts as.

A key is shown once, at creation (`NewApiKey.secret`); the database keeps only its hash and a shown prefix. A key acts
as its owner, with the owner's role, credits and markup, narrowed by the key's own limits: the models it may call
(checked by `services.generation`), its requests per minute (checked here, shared through Redis when REDIS_URL is set)
and its monthly credits (checked by the ledger when the call's credits are held). Creation and revocation are audited.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from core.access import SYSTEM, Caller, Capability, Principal, Role, guarded, is_self, require
from core.billing.inputs import typed_whole
from core.catalog.lookup import UnknownModelError
from core.catalog.types import ModelPrice
from core.db.limits import check_line
from core.db.models import utcnow
from core.errors import InvalidInputError, RateLimitedError, UnauthenticatedError
from core.keys import store
from core.keys.store import ApiKeyView, KeyLimits, KeyOwner, NewApiKey
from core.keys.tokens import hash_key, plausible, same_hash
from core.services.times import day_bounds, stamp
from core.users import get_user

if TYPE_CHECKING:
    from core.services.container import Services

__all__ = ["ApiKeyView", "KeyLimits", "KeyService", "NewApiKey"]

TOUCH_EVERY_SECONDS = 60.0  # last_used_at is written at most this often per key and process
MAX_RPM = 100_000
MAX_MONTHLY_CREDITS = 2**31 - 1  # as the command line bounds --monthly-credits
MAX_NAME_CHARS = 100


@dataclass(frozen=True, kw_only=True)
class KeyRequest:
    """What `keys create` asks for, checked."""

    name: str
    limits: KeyLimits
    expires_at: datetime | None


class KeyService:
    def __init__(self, services: Services) -> None:
        self._s = services
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()
        # Seconds a key read by `admit` is reused for the same key's next requests (0: read on every request). The
        # gateway sets it (GATEWAY_CACHE_SECONDS): a revocation in this process applies at once, one made elsewhere
        # (the API keys page, another worker) within that time, as do changes to the key's limits or owner.
        self.lookup_ttl = 0.0
        self._known: dict[str, tuple[float, KeyOwner]] = {}

    # ---- managing keys -------------------------------------------------------------------------------------------
    @guarded(Capability.MANAGE_API_KEYS, own="user")
    def create(
        self,
        caller: Caller,
        user: int | str,
        name: str,
        *,
        monthly_credits: int | str | None = None,
        rpm: int | str | None = None,
        models: list[str] | tuple[str, ...] | None = None,
        expires: date | datetime | None = None,
    ) -> NewApiKey:
        """A new key for `user`. Its `secret` is shown now and never again (only its hash is stored). The limits may
        be given as typed in a form (blank: none; "2.5" or "1e20" refused, never read as 2 or 1)."""
        monthly_credits = _typed_limit(monthly_credits, "Monthly credits", "credits", "5000")
        rpm = _typed_limit(rpm, "Requests per minute", "requests", "60")
        checked = self._check(name, monthly_credits, rpm, models, expires)
        with self._s.db.write_session() as s:
            owner = get_user(s, user)
        return store.create(
            self._s.db.engine,
            user_id=owner.id,
            name=checked.name,
            limits=checked.limits,
            expires_at=checked.expires_at,
            actor=caller.actor,
        )

    @guarded(None, scoped=(Capability.MANAGE_API_KEYS,))
    def list(self, caller: Caller, user: int | str | None = None) -> list[ApiKeyView]:
        """Keys, newest first: everyone's (or `user`'s) for admins and the system, one's own for everybody else."""
        if user is not None and not is_self(caller, user):
            require(caller, Capability.MANAGE_API_KEYS)
        if caller.can(Capability.MANAGE_API_KEYS):
            if user is None:
                return store.list_keys(self._s.db.engine)
            with self._s.db.session() as s:
                return store.list_keys(self._s.db.engine, get_user(s, user).id)
        return store.list_keys(self._s.db.engine, caller.user_id)  # type: ignore[union-attr]

    @guarded(Capability.MANAGE_API_KEYS, own="user")
    def revoke(self, caller: Caller, user: int | str, key: int | str) -> ApiKeyView:
        """Revoke `user`'s key `key` (its id or its prefix); calls with it are refused from now on."""
        with self._s.db.write_session() as s:
            owner = get_user(s, user)
        found = store.find(self._s.db.engine, key, owner.id)
        revoked = store.revoke(self._s.db.engine, found, actor=caller.actor)
        self._known.clear()
        return revoked

    # ---- the gateway ---------------------------------------------------------------------------------------------
    @guarded(None, system_only=True)
    def admit(self, caller: Caller, secret: str | None) -> Principal:
        """The principal a request's key acts as: its owner, narrowed to the key's models. Refuses a missing,
        unknown, revoked or expired key (`UnauthenticatedError`) and a key over its requests per minute
        (`RateLimitedError`, with when to try again). The key is compared by its hash, in constant time."""
        found, digest = self._authenticated(secret)
        key = found.key
        if key.limits.rpm:
            # by the hash: unique to the key whatever database it lives in (several may share one Redis)
            wait = self._s.rate_limiter.acquire(f"key:{digest[:32]}", key.limits.rpm)
            if wait is not None:
                raise RateLimitedError(
                    f"API key {key.prefix}… is limited to {key.limits.rpm:,} "
                    f"request{'s' if key.limits.rpm != 1 else ''} per minute; try again in "
                    f"{wait:.1f} s.",
                    retry_after=wait,
                )
        self._touch(key.id)
        return Principal(
            user_id=key.owner_id,
            email=key.owner_email,
            name=found.owner_name,
            role=Role(found.owner_role),
            api_key_id=key.id,
            api_key_models=key.limits.models,
        )

    @guarded(None, system_only=True)
    def authenticate(self, caller: Caller, secret: str | None) -> None:
        """Refuse a missing, unknown, revoked or expired key as `admit` does (`UnauthenticatedError`), without
        counting a request against the key's limit: a malformed request is answered 401 before its 400, as OpenAI
        answers, so a body's error tells nothing to someone without a key."""
        self._authenticated(secret)

    def _authenticated(self, secret: str | None) -> tuple[KeyOwner, str]:
        secret = (secret or "").strip()
        if not secret:
            raise UnauthenticatedError(
                "No API key: send it as `Authorization: Bearer sk-ac-...` (or `x-api-key`). "
                "`python -m core keys create` or the API keys page makes one."
            )
        digest = hash_key(secret) if plausible(secret) else None
        found = self._by_hash(digest) if digest else None
        if found is None or digest is None or not same_hash(found.key_hash, digest):
            raise UnauthenticatedError(
                "Incorrect API key provided. Check it, or create a new one on the API keys page (keys are shown once)."
            )
        key = found.key
        status = key.status()
        if status == "revoked":
            raise UnauthenticatedError(
                f"API key {key.prefix}… was revoked on {key.revoked_at:%Y-%m-%d}; create a new one on the API keys "
                "page."
            )
        if status == "expired":
            raise UnauthenticatedError(
                f"API key {key.prefix}… expired on {key.expires_at:%Y-%m-%d %H:%M} UTC; create a new one on the API "
                "keys page."
            )
        return found, digest

    @guarded(None)
    def models(self, caller: Caller) -> list[ModelPrice]:
        """The active catalog models the caller may call now: those of a configured provider (a provider without its
        key would answer 503), all of them or those its API key allows. An id served both serverless and dedicated is
        routed to its serverless entry, so it is listed only when that entry's provider can answer."""
        allowed = caller.api_key_models if isinstance(caller, Principal) else None
        reachable = set(self._s.providers.configured_providers())
        models = self._s.models.list(caller)
        routed: dict[str, ModelPrice] = {}  # model id -> the entry a call by that id reaches (as catalog.get_model)
        for m in models:
            kept = routed.get(m.model_id)
            if kept is None or (kept.deployment_type == "dedicated" and m.deployment_type != "dedicated"):
                routed[m.model_id] = m
        return [
            m
            for m in models
            if routed[m.model_id] is m and m.provider in reachable and (allowed is None or m.model_id in allowed)
        ]

    @guarded(None)
    def model(self, caller: Caller, model_id: str) -> ModelPrice:
        """One of `models(caller)`: a model it may not call now is unknown to it, as to the models list."""
        for model in self.models(caller):
            if model.model_id == model_id:
                return model
        raise UnknownModelError(
            f"Unknown model {model_id!r}: it is not one this key may call now; GET /v1/models lists those."
        )

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _by_hash(self, digest: str) -> KeyOwner | None:
        if self.lookup_ttl <= 0:
            return store.by_hash(self._s.db.engine, digest)
        now = time.monotonic()
        kept = self._known.get(digest)
        if kept is not None and now - kept[0] < self.lookup_ttl:
            return kept[1]
        found = store.by_hash(self._s.db.engine, digest)
        if found is not None:  # only keys that exist are kept: their number is the database's, not the callers'
            self._known[digest] = (now, found)
        return found

    def _touch(self, key_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(key_id, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
                return
            self._touched[key_id] = now
        store.touch(self._s.db.engine, key_id, utcnow())

    def _check(
        self,
        name: str,
        monthly_credits: int | None,
        rpm: int | None,
        models: list[str] | tuple[str, ...] | None,
        expires: date | datetime | None,
    ) -> KeyRequest:
        name = (name or "").strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise InvalidInputError(f"A key needs a name of 1 to {MAX_NAME_CHARS} characters (what it is for).")
        check_line(name, "A key's name")
        for label, value, most in (("monthly credits", monthly_credits, MAX_MONTHLY_CREDITS), ("rpm", rpm, MAX_RPM)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidInputError(f"A key's {label} must be a whole number above zero, got {value!r}.")
            if most is not None and value > most:
                raise InvalidInputError(f"A key's {label} can be at most {most:,}, got {value:,}.")
        picked: tuple[str, ...] | None = None
        if models is not None:
            picked = tuple(dict.fromkeys(m.strip() for m in models if m.strip()))
            if not picked:
                raise InvalidInputError("Name at least one model for the key, or leave models out to allow all.")
            known = {m.model_id for m in self._s.models.list(SYSTEM)}
            unknown = [m for m in picked if m not in known]
            if unknown:
                raise InvalidInputError(
                    f"Unknown model {unknown[0]!r}: it is not an active catalog model. "
                    "`python -m core models list` shows the choices."
                )
        tz = self._s.settings.reporting_tz
        expires_at = _instant(expires, tz)
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidInputError(f"The expiry {stamp(expires_at, tz)} is in the past; pick a later one.")
        return KeyRequest(
            name=name, limits=KeyLimits(monthly_credits=monthly_credits, rpm=rpm, models=picked), expires_at=expires_at
        )


def _instant(value: date | datetime | None, tz: str) -> datetime | None:
    """A date means its first instant in the reporting time zone `tz` (the day the pages show it on), as naive UTC; a
    datetime is taken as UTC unless it carries its own zone."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return day_bounds(value, None, tz)[0]


def _typed_limit(value: int | str | None, what: str, unit: str, example: str) -> int | None:
    """A key's limit as given: None (or blank text) for none, else the whole number typed (range checked later)."""
    if isinstance(value, str):
        return typed_whole(value, what, unit, example) if value.strip() else None
    return value
