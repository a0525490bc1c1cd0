"""What the schema can store, checked before any write, so SQLite and PostgreSQL refuse the same values alike.

SQLite stores a 10,000-character name in a VARCHAR(200) column while PostgreSQL raises StringDataRightTruncation;
PostgreSQL refuses a NUL character that SQLite keeps; neither can encode text that is not valid Unicode (what Python
makes of invalid UTF-8). This module is the one place those rules live: `check_text` for a value about to be written
to a column, and a listener on every mapped table (installed by core.db.models) that checks each text column of a row
before it is inserted or updated, so no service has to remember to.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapper

from core.errors import InvalidInputError


def column_length(column: Any) -> int | None:
    """The most characters a String column holds (None for unbounded text), from the ORM attribute or the column."""
    col = getattr(column, "expression", column)
    col_type = getattr(col, "type", None)
    return col_type.length if isinstance(col_type, String) else None


def check_text(value: str | None, what: str, *, limit: int | None) -> str | None:
    """`value` when it can be stored in a column of `limit` characters; otherwise InvalidInputError naming `what`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text, got {type(value).__name__}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} is not valid UTF-8 text; retype it (check the terminal's encoding).") from None
    if "\x00" in value:
        raise InvalidInputError(f"{what} contains a NUL character, which cannot be stored; remove it.")
    if limit is not None and len(value) > limit:
        raise InvalidInputError(f"{what} is {len(value):,} characters long; at most {limit:,} fit.")
    return value


SINGLE_LINE = frozenset({"name", "email", "model_name"})  # names people see in one line: tables, banners, sidebars


def check_line(value: str, what: str) -> str:
    """`value` when it holds no line break or other control character (a name with a newline splits a table row;
    U+2028 and U+2029, Unicode's line and paragraph separators, break it as well), and something visible (a name of
    zero-width characters only reads as nothing)."""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise InvalidInputError(f"{what} contains a control character ({bad!r}); type it on one line.")
    if value and all(c.isspace() or unicodedata.category(c) == "Cf" for c in value):
        raise InvalidInputError(f"{what} holds only invisible characters; type something readable.")
    return value


def check_column(column: Any, value: str | None, what: str | None = None) -> str | None:
    """`check_text` against a mapped column's own length (e.g. `check_column(User.email, email, "The email")`)."""
    col = getattr(column, "expression", column)
    return check_text(value, what or f"The {col.name.replace('_', ' ')}", limit=column_length(col))


def check_row(mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    """Before an ORM insert or update: every text column's value fits its column (the same answer on both databases)."""
    for prop in mapper.column_attrs:
        col = prop.columns[0]
        if isinstance(getattr(col, "type", None), String):
            value = getattr(target, prop.key, None)
            if isinstance(value, str):
                what = f"The {mapper.local_table.name.rstrip('s').replace('_', ' ')}'s {col.name.replace('_', ' ')}"
                check_text(value, what, limit=col.type.length)
                if col.name in SINGLE_LINE:
                    check_line(value, what)
