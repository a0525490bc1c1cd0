"""The `api_keys` table: create, list, find, revoke and authenticate keys. A key's secret never reaches the database:
only its hash and shown prefix. Creation and revocation are written to the audit log in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from core.db.models import ApiKey, AuditLog, User, utcnow
from core.errors import NotFoundError
from core.keys.tokens import new_key

_keys = ApiKey.__table__
_users = User.__table__
_COLUMNS = (*_keys.c, _users.c.email.label("owner_email"))
_BASE = select(*_COLUMNS).join(_users, _users.c.id == _keys.c.user_id)
# The request hot path: the key and its owner, by hash (unique index). Sent to the driver as it is, like the ledger's
# hot path (accounts_sql.py): SQLAlchemy's per-statement work was a tenth of a gateway request's CPU.
_BY_HASH = (
    "SELECT k.id, k.user_id, u.email, k.name, k.prefix, k.created_at, k.created_by, k.last_used_at, k.expires_at,"
    " k.revoked_at, k.revoked_by, k.monthly_credits, k.rpm, k.allowed_models, k.key_hash, u.name, u.role"
    " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = {param}"
)


@dataclass(frozen=True, kw_only=True)
class KeyLimits:
    """A key's own limits; None means none (the owner's balance and budgets still apply)."""

    monthly_credits: int | None = None
    rpm: int | None = None
    models: tuple[str, ...] | None = None  # catalog model ids the key may call


@dataclass(frozen=True, kw_only=True)
class ApiKeyView:
    id: int
    owner_id: int
    owner_email: str
    name: str
    prefix: str  # the key's first characters, e.g. "sk-ac-Xy3_9q": enough to tell keys apart, useless to call with
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    limits: KeyLimits

    def status(self, now: datetime | None = None) -> str:
        """active | revoked | expired."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


@dataclass(frozen=True, kw_only=True)
class NewApiKey:
    """A key just created: `secret` is the key itself, shown once and then forgotten."""

    key: ApiKeyView
    secret: str

    def __repr__(self) -> str:
        return f"NewApiKey(key={self.key!r}, secret='{self.key.prefix}…')"


@dataclass(frozen=True, kw_only=True)
class KeyOwner:
    """A key found by its hash, with the owner the calls it makes act as."""

    key: ApiKeyView
    key_hash: str
    owner_name: str
    owner_role: str


def _view(row: Any) -> ApiKeyView:
    models = row.allowed_models
    return ApiKeyView(
        id=row.id,
        owner_id=row.user_id,
        owner_email=row.owner_email,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        limits=KeyLimits(
            monthly_credits=row.monthly_credits, rpm=row.rpm, models=tuple(models) if models is not None else None
        ),
    )


def _audit(conn: Connection, actor: str, action: str, key: ApiKeyView, details: dict[str, Any]) -> None:
    conn.execute(
        insert(AuditLog.__table__).values(
            at=utcnow(),
            actor=actor,
            action=action,
            target=key.owner_email,
            details={"key_id": key.id, "prefix": key.prefix, "name": key.name, **details},
        )
    )


def create(
    engine: Engine,
    *,
    user_id: int,
    name: str,
    limits: KeyLimits,
    expires_at: datetime | None,
    actor: str,
) -> NewApiKey:
    """A new key for `user_id` (audited as `api_key.create`); its secret is in the answer and nowhere else."""
    secret, prefix, digest = new_key()
    with engine.begin() as conn:
        key_id = conn.execute(
            insert(_keys)
            .values(
                user_id=user_id,
                name=name,
                prefix=prefix,
                key_hash=digest,
                created_at=utcnow(),
                created_by=actor,
                expires_at=expires_at,
                monthly_credits=limits.monthly_credits,
                rpm=limits.rpm,
                allowed_models=list(limits.models) if limits.models is not None else None,
            )
            .returning(_keys.c.id)
        ).scalar_one()
        view = _view(conn.execute(_BASE.where(_keys.c.id == key_id)).one())
        _audit(
            conn,
            actor,
            "api_key.create",
            view,
            {
                "monthly_credits": limits.monthly_credits,
                "rpm": limits.rpm,
                "models": list(limits.models) if limits.models is not None else None,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return NewApiKey(key=view, secret=secret)


def list_keys(engine: Engine, user_id: int | None = None) -> list[ApiKeyView]:
    """Keys (of one owner, or everyone's), newest first."""
    stmt = _BASE.order_by(_keys.c.id.desc())
    if user_id is not None:
        stmt = stmt.where(_keys.c.user_id == user_id)
    with engine.connect() as conn:
        return [_view(r) for r in conn.execute(stmt)]


def find(engine: Engine, ref: int | str, user_id: int | None = None) -> ApiKeyView:
    """The key with id `ref`, or whose prefix is `ref` (of `user_id`'s keys, when given)."""
    text_ref = str(ref).strip()
    stmt = _BASE.where(_keys.c.id == int(text_ref)) if text_ref.isdigit() else _BASE.where(_keys.c.prefix == text_ref)
    if user_id is not None:
        stmt = stmt.where(_keys.c.user_id == user_id)
    with engine.connect() as conn:
        rows = list(conn.execute(stmt))
    if len(rows) != 1:
        whose = " of this user" if user_id is not None else ""
        problem = "No API key" if not rows else "More than one API key"
        raise NotFoundError(
            f"{problem} {text_ref!r}{whose}; `python -m core keys list` shows the keys with their ids and prefixes."
        )
    return _view(rows[0])


def revoke(engine: Engine, key: ApiKeyView, *, actor: str) -> ApiKeyView:
    """Revoke `key` from now on (audited as `api_key.revoke`); revoking a revoked key changes nothing."""
    with engine.begin() as conn:
        done = conn.execute(
            update(_keys)
            .where(_keys.c.id == key.id, _keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_by=actor)
        )
        view = _view(conn.execute(_BASE.where(_keys.c.id == key.id)).one())
        if done.rowcount:
            _audit(conn, actor, "api_key.revoke", view, {})
    return view


def by_hash(engine: Engine, key_hash: str) -> KeyOwner | None:
    """The key with this hash and its owner, or None."""
    sqlite = engine.dialect.name == "sqlite"
    sql = _BY_HASH.format(param=":h" if sqlite else "%(h)s")
    with engine.connect() as conn:
        row = conn.connection.driver_connection.execute(sql, {"h": key_hash}).fetchone()
        conn.rollback()
    if row is None:
        return None
    models = json.loads(row[13]) if isinstance(row[13], str) else row[13]
    key = ApiKeyView(
        id=row[0],
        owner_id=row[1],
        owner_email=row[2],
        name=row[3],
        prefix=row[4],
        created_at=_when(row[5]),  # type: ignore[arg-type]
        created_by=row[6],
        last_used_at=_when(row[7]),
        expires_at=_when(row[8]),
        revoked_at=_when(row[9]),
        revoked_by=row[10],
        limits=KeyLimits(monthly_credits=row[11], rpm=row[12], models=tuple(models) if models is not None else None),
    )
    return KeyOwner(key=key, key_hash=row[14], owner_name=row[15], owner_role=row[16])


def _when(value: Any) -> datetime | None:
    # SQLite hands DateTime columns back as their stored text
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def touch(engine: Engine, key_id: int, when: datetime) -> None:
    """Record that the key was used at `when`."""
    with engine.begin() as conn:
        conn.execute(update(_keys).where(_keys.c.id == key_id).values(last_used_at=when))
