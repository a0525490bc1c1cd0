"""Together AI: OpenAI-compatible chat completions, priced per token."""

from __future__ import annotations

from core.providers.openai_compat import OpenAICompatibleChat
from core.providers.types import Category


class TogetherAIProvider(OpenAICompatibleChat):
    name = "together_ai"
    display_name = "Together AI"
    key_env = "TOGETHER_API_KEY"
    categories = frozenset({Category.CHAT})
    max_tokens_field = "max_tokens"
