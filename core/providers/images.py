"""Images in a chat's user messages (vision), in OpenAI's shape: a content part
`{"type": "image_url", "image_url": {"url": ..., "detail": "auto" | "low" | "high"}}` whose URL is `https://...` (the
provider fetches it) or a `data:image/...;base64,...` URL. Checked once here for every door; passed as is to the
OpenAI-compatible upstreams, translated to Anthropic's `image` blocks (base64 or url source) for Claude.

An image is prompt tokens, counted by the provider's own rule from its size, which the request may not show (a URL):
the hold's bound counts each image at the most its model can bill for one (`image_token_bound`), by the rules the
providers publish. A model without a published rule gets the largest of them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import InvalidInputError

FILE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
MEDIA_TYPES = tuple(sorted(set(FILE_TYPES.values())))
MAX_IMAGES = 100  # per request (Anthropic's limit; OpenAI's is higher)
DETAILS = ("auto", "low", "high")
_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,(.*)$", re.DOTALL)

# The most one image can cost, in prompt tokens, by the providers' published rules:
# - OpenAI, tiles of 512 px after scaling into 2048 x 2048 and the short side to 768 (at most 2 x 4 tiles): gpt-4o,
#   gpt-4.1, gpt-4.5: 85 + 170 a tile; o1, o3: 75 + 150; gpt-4o-mini: 2,833 + 5,667. Patches of 32 px, at most 1,536,
#   times the model's multiplier: gpt-4.1-mini 1.62, gpt-4.1-nano 2.46, o4-mini 1.72.
# - Anthropic: width x height / 750, images scaled down to ~1.15 megapixels first: about 1,600 at most.
_OPENAI_TILES = 8
OPENAI_IMAGE_TOKENS = (  # (model id prefix, tokens), the longest prefix first
    ("gpt-4o-mini", 2_833 + 5_667 * _OPENAI_TILES),
    ("gpt-4.1-nano", 3_779),
    ("gpt-4.1-mini", 2_489),
    ("o4-mini", 2_642),
    ("gpt-4o", 85 + 170 * _OPENAI_TILES),
    ("chatgpt-4o", 85 + 170 * _OPENAI_TILES),
    ("gpt-4.1", 85 + 170 * _OPENAI_TILES),
    ("gpt-4.5", 85 + 170 * _OPENAI_TILES),
    ("o1", 75 + 150 * _OPENAI_TILES),
    ("o3", 75 + 150 * _OPENAI_TILES),
)
ANTHROPIC_IMAGE_TOKENS = 1_600
MAX_IMAGE_TOKENS = max(t for _p, t in OPENAI_IMAGE_TOKENS)  # a model without a published rule


def image_token_bound(provider: str | None, model_id: str | None) -> int:
    """The most one image can add to the prompt on this model (see the module doc)."""
    if provider == "anthropic":
        return ANTHROPIC_IMAGE_TOKENS
    if provider == "openai" and model_id:
        for prefix, tokens in OPENAI_IMAGE_TOKENS:
            if model_id.startswith(prefix):
                return tokens
    return MAX_IMAGE_TOKENS


def image_parts(messages: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """Every image part of the conversation, in order."""
    return [
        part
        for m in messages or ()
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if isinstance(part, Mapping) and part.get("type") == "image_url"
    ]


def check_images(messages: Sequence[Mapping[str, Any]] | None) -> None:
    """Images only in user messages, each with an https or a base64 data URL of a PNG, JPEG, GIF or WebP image."""
    count = 0
    for i, m in enumerate(messages or ()):
        for part in m.get("content") if isinstance(m.get("content"), list) else ():
            if not isinstance(part, Mapping) or part.get("type") != "image_url":
                continue
            count += 1
            if m.get("role") != "user":
                raise InvalidInputError(
                    f"messages[{i}] has the role {m.get('role')!r}: only user messages take images.", param="messages"
                )
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else None
            if not isinstance(url, str):
                raise InvalidInputError(
                    f'An image part of messages[{i}] needs `image_url: {{"url": ...}}`.', param="messages"
                )
            if image.get("detail") is not None and image["detail"] not in DETAILS:
                raise InvalidInputError(
                    f"An image's `detail` must be auto, low or high, not {image['detail']!r}.", param="messages"
                )
            _check_url(url, i)
    if count > MAX_IMAGES:
        raise InvalidInputError(
            f"The request holds {count} images; at most {MAX_IMAGES} are allowed.", param="messages"
        )


def _check_url(url: str, i: int) -> None:
    if url.startswith("https://"):  # a plain http:// URL is refused, as OpenAI's and Anthropic's docs ask for https
        return
    data = data_url(url)
    if data is None:
        raise InvalidInputError(
            f"An image of messages[{i}] must be an https URL or a base64 data URL (data:image/png;base64,...).",
            param="messages",
        )
    media_type, _payload = data
    if media_type not in MEDIA_TYPES:
        raise InvalidInputError(
            f"An image must be PNG, JPEG, GIF or WebP; messages[{i}] sends {media_type}.", param="messages"
        )


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 payload) of a base64 data URL whose payload decodes; None for anything else."""
    found = _DATA_URL.match(url)
    if found is None:
        return None
    try:
        base64.b64decode(found.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None
    return found.group(1), found.group(2)


def anthropic_image(part: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI image part as Anthropic's `image` block."""
    url = part["image_url"]["url"]
    data = data_url(url)
    if data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": data[0], "data": data[1]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def file_part(name: str, data: bytes) -> dict[str, Any]:
    """An image file (its name says its type) as an image part with a base64 data URL."""
    kind = FILE_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None
    if kind is None:
        raise InvalidInputError(
            f"{name} is not a PNG, JPEG, GIF or WebP image (.png, .jpg, .gif or .webp); attach one."
        )
    return {"type": "image_url", "image_url": {"url": f"data:{kind};base64,{base64.b64encode(data).decode()}"}}
