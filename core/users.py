"""People who use the product: add, find, list. Roles decide what each may see and do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing.errors import UnknownUserError
from core.billing.money import validate_markup
from core.db.models import ROLES, User
from core.errors import InvalidInputError

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


__all__ = ["UnknownUserError", "UserView", "add_user", "get_user", "list_users", "to_view"]


@dataclass(frozen=True, kw_only=True)
class UserView:
    id: int
    email: str
    name: str
    role: str
    developer_markup_pct: Decimal
    credit_balance: int
    created_at: datetime


def to_view(u: User) -> UserView:
    return UserView(
        id=u.id,
        email=u.email,
        name=u.name,
        role=u.role,
        developer_markup_pct=u.developer_markup_pct,
        credit_balance=u.credit_balance,
        created_at=u.created_at,
    )


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
    try:
        markup = validate_markup(markup_pct)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(str(exc)) from exc
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise InvalidInputError(f"A user with email {email} already exists.")
    user = User(email=email, name=name.strip(), role=role, developer_markup_pct=markup, credit_balance=0)
    session.add(user)
    session.flush()
    return to_view(user)


def get_user(session: Session, email_or_id: str | int) -> UserView:
    if isinstance(email_or_id, int) or str(email_or_id).isdigit():
        user = session.get(User, int(email_or_id))
    else:
        user = session.scalar(select(User).where(User.email == str(email_or_id).strip().lower()))
    if user is None:
        raise UnknownUserError(f"No user {email_or_id!r}; `python -m core users list` shows who exists.")
    return to_view(user)


def list_users(session: Session, role: str | None = None) -> list[UserView]:
    stmt = select(User).order_by(User.email)
    if role:
        stmt = stmt.where(User.role == role)
    return [to_view(u) for u in session.scalars(stmt)]
