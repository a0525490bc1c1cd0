"""The email rule: an address is shown on every page, so nothing Markdown or HTML reads as markup is an email."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInputError
from core.users import add_user, list_users
from tests.conftest import make_runtime


@pytest.mark.parametrize(
    "email",
    [
        "[clickme](https://evil.example)@x.io",
        "![p](http://host/px.png)@x.io",
        "<img src=x>@x.io",
        "a@[127.0.0.1]",
        "`code`@x.io",
        "a b@x.io",
        "a@x",
        "a@-x.io",
        "a@x..io",
        "@x.io",
        "a@@x.io",
    ],
)
def test_markup_and_malformed_addresses_are_not_emails(tmp_path: Path, email: str) -> None:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    with pytest.raises(InvalidInputError, match="is not an email address"), rt.session() as s:
        add_user(s, email=email, name="X", role="pm")
    with rt.session() as s:
        assert list_users(s) == []
    rt.dispose()


@pytest.mark.parametrize("email", ["ada@x.io", "o'brien+test@mail.example.co.uk", "J.Doe_1%x@EXAMPLE.COM"])
def test_ordinary_addresses_are_emails(tmp_path: Path, email: str) -> None:
    rt = make_runtime(f"sqlite:///{tmp_path / 'app.db'}", tmp_path)
    with rt.session() as s:
        assert add_user(s, email=email, name="X", role="pm").email == email.lower()
    rt.dispose()
