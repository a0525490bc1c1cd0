"""Providers: BaseProvider, one module per upstream, the registry (factory) and the offline sandbox."""

from core.providers.audio import AudioFormatError, audio_seconds
from core.providers.base import BaseProvider
from core.providers.errors import (
    AuthError,
    BadRequestError,
    ProviderConfigError,
    ProviderError,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    UpstreamError,
    UpstreamProtocolError,
)
from core.providers.registry import PROVIDER_CLASSES, AIProviderFactory, ProviderName, UnknownProviderError
from core.providers.retry import RetryPolicy
from core.providers.types import Category, GenerationRequest, ProviderResult, TextStream

__all__ = [
    "PROVIDER_CLASSES",
    "AIProviderFactory",
    "AudioFormatError",
    "AuthError",
    "BadRequestError",
    "BaseProvider",
    "Category",
    "GenerationRequest",
    "ProviderConfigError",
    "ProviderError",
    "ProviderName",
    "ProviderResult",
    "ProviderTimeout",
    "QuotaExceededError",
    "RateLimitError",
    "RetryPolicy",
    "TextStream",
    "UnknownProviderError",
    "UpstreamError",
    "UpstreamProtocolError",
    "audio_seconds",
]
