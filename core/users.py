"""People who use the product: add, find, list. The one place a user is looked up by id, email or view.

A user reference (`UserRef`) is an id, an email or a `UserView`; `user_key` turns one into the column and value to
look it up by (billing's hot-path SQL uses it too), `get_user` reads the user through a Session or a Connection.
Roles decide what each may see and do (`core.access`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from core.db.models import ROLES, User
from core.errors import InvalidInputError, NotFoundError
from core.money import validate_markup

# An address shown on every page: letters, digits and . _ % + ' - before the @, a dotted host name after it. Nothing
# Markdown or HTML reads as markup ([ ] ( ) ! < > ` *) passes, so an email can never become a link or an image.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
# the local part: dot-separated atoms, no dot first, last or doubled (RFC 5322's dot-atom; "z..z@" is no address)
EMAIL_RE = re.compile(rf"^[a-z0-9_%+'-]+(?:\.[a-z0-9_%+'-]+)*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,}}$")

__all__ = [
    "UnknownUserError",
    "UserRef",
    "UserView",
    "add_user",
    "get_user",
    "list_users",
    "no_such_user",
    "to_view",
    "user_key",
]


class UnknownUserError(NotFoundError):
    pass


@dataclass(frozen=True, kw_only=True)
class UserView:
    id: int
    email: str
    name: str
    role: str
    developer_markup_pct: Decimal
    credit_balance: int
    created_at: datetime


UserRef: TypeAlias = "int | str | UserView"

# Prebuilt Core selects (a third of the ORM's cost on the generation hot path); rows carry the model's attribute names.
_BY_ID = select(*User.__table__.columns).where(User.id == bindparam("uid"))
_BY_EMAIL = select(*User.__table__.columns).where(User.email == bindparam("email"))


def checked_markup(markup_pct: Decimal | int | str) -> Decimal:
    """A markup percentage as the money rules take it (0 to 1000, at most 4 decimals), or InvalidInputError saying
    what is wrong with it (for every door: forms, the command line, the calculator)."""
    try:
        return validate_markup(markup_pct)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{str(exc).rstrip('.')}.") from None


def to_view(u: Any) -> UserView:
    """A frozen view of a `User` row (ORM object or Core row with the same attribute names)."""
    return UserView(
        id=u.id,
        email=u.email,
        name=u.name,
        role=u.role,
        developer_markup_pct=u.developer_markup_pct,
        credit_balance=u.credit_balance,
        created_at=u.created_at,
    )


MAX_USER_ID = 2**31 - 1  # users.id is INTEGER on both databases


def no_such_user(ref: object) -> UnknownUserError:
    return UnknownUserError(
        f"No user {ref!r}: check the email or id (the Ledger page and `python -m core users list` show who exists)."
    )


def user_key(ref: object) -> tuple[str, dict[str, Any]]:
    """('id', {'uid': ...}) or ('email', {'email': ...}) for a user id, an email or a UserView."""
    if isinstance(getattr(ref, "id", None), int) and isinstance(getattr(ref, "email", None), str):
        return "id", {"uid": ref.id}  # type: ignore[attr-defined]
    if isinstance(ref, bool):
        raise InvalidInputError(f"{ref!r} is not a user; pass a user id, an email or a UserView.")
    if isinstance(ref, int):
        if not 0 < ref <= MAX_USER_ID:
            raise no_such_user(ref)  # no row has it, and the database would refuse to compare it
        return "id", {"uid": ref}
    if isinstance(ref, str) and ref.strip():
        s = ref.strip()
        return user_key(int(s)) if s.isascii() and s.isdigit() and len(s) < 20 else ("email", {"email": s.lower()})
    raise InvalidInputError(f"{ref!r} is not a user; pass a user id, an email or a UserView.")


def get_user(db: Session | Connection, ref: object) -> UserView:
    """The user `ref` names, read through a Session or a Connection; `UnknownUserError` when there is none."""
    if isinstance(ref, UserView):
        return ref
    by, params = user_key(ref)
    row = db.execute(_BY_ID if by == "id" else _BY_EMAIL, params).first()
    if row is None:
        raise no_such_user(ref)
    return to_view(row)


def add_user(
    session: Session, *, email: str, name: str, role: str, markup_pct: Decimal | str | int = Decimal(100)
) -> UserView:
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInputError(f"{email!r} is not an email address.")
    if role not in ROLES:
        raise InvalidInputError(f"Unknown role {role!r}; choose one of: {', '.join(ROLES)}.")
    if not name.strip():
        raise InvalidInputError("A user needs a name.")
    markup = checked_markup(markup_pct).quantize(Decimal("0.0001"))  # as stored (Numeric(9, 4)) and listed
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise InvalidInputError(f"A user with email {email} already exists.")
    user = User(email=email, name=name.strip(), role=role, developer_markup_pct=markup, credit_balance=0)
    session.add(user)
    session.flush()
    return to_view(user)


def list_users(session: Session, role: str | None = None) -> list[UserView]:
    stmt = select(User).order_by(User.email)
    if role:
        stmt = stmt.where(User.role == role)
    return [to_view(u) for u in session.scalars(stmt)]
