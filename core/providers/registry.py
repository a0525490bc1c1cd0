"""The provider registry: names, classes and the factory that builds configured providers.

Adding a provider is one class (a module with a `BaseProvider` subclass) and one line in `PROVIDER_CLASSES`.
"""

from __future__ import annotations

import urllib.request
from enum import StrEnum

import httpx

from core import event_loop
from core.config import Settings
from core.errors import NotFoundError
from core.providers.anthropic import AnthropicProvider
from core.providers.base import DEFAULT_TIMEOUT, BaseProvider, Sleep
from core.providers.huggingface import HuggingFaceProvider
from core.providers.huggingface_endpoint import HuggingFaceEndpointProvider
from core.providers.minimax import MiniMaxProvider
from core.providers.openai import OpenAIProvider
from core.providers.retry import RetryPolicy
from core.providers.sandbox import SandboxProvider
from core.providers.together_ai import TogetherAIProvider
from core.providers.transport import UpstreamTransport

PROVIDER_CLASSES: tuple[type[BaseProvider], ...] = (
    OpenAIProvider,
    AnthropicProvider,
    TogetherAIProvider,
    HuggingFaceProvider,
    HuggingFaceEndpointProvider,
    MiniMaxProvider,
    SandboxProvider,
)

# The names, as a StrEnum built from the classes so a new provider needs no second edit.
ProviderName = StrEnum("ProviderName", [(cls.name.upper(), cls.name) for cls in PROVIDER_CLASSES])  # type: ignore[misc]
_BY_NAME: dict[str, type[BaseProvider]] = {cls.name: cls for cls in PROVIDER_CLASSES}


# The gateway has many calls in flight at once: keep that many connections to the upstreams open (httpx keeps 20 by
# default, so past 20 concurrent calls each one opened a new connection, and a new TLS handshake on a real upstream).
UPSTREAM_KEPT_ALIVE = 128


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class UpstreamClient(httpx.Client):
    """An httpx.Client that keeps no cookies. One client serves every user's calls, so a cookie an upstream sets on
    one call (Cloudflare's `__cf_bm` on api.openai.com, say) must not ride along on another user's; reading each
    answer's Set-Cookie into a cookie jar also cost ~0.1 ms of CPU per call."""

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("The providers' client keeps no cookies.")


def upstream_client() -> httpx.Client:
    """The providers' shared client: on the lean transport (core.providers.transport), or on httpx's own when the
    environment names a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY; httpx applies them, and NO_PROXY, only there)."""
    if any(urllib.request.getproxies().get(scheme) for scheme in ("http", "https", "all")):
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=UPSTREAM_KEPT_ALIVE, keepalive_expiry=30.0)
        return UpstreamClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False, limits=limits)
    transport = UpstreamTransport(max_idle=UPSTREAM_KEPT_ALIVE, keepalive_seconds=30.0)
    return UpstreamClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False, transport=transport)


class UnknownProviderError(NotFoundError):
    pass


class AIProviderFactory:
    """Builds providers from settings (key, base URL) around one shared `httpx.Client` (pooled connections).

    Tests inject a client with a `MockTransport`, a `sleep` that records instead of waiting, and a retry policy.
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        *,
        sleep: Sleep = event_loop.sleep,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._owns_client = client is None
        self.sleep = sleep
        self.retry = retry
        self._cache: dict[str, BaseProvider] = {}

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = upstream_client()
        return self._client

    def waits_hand_back_the_loop(self) -> bool:
        """True when a call's network waits hand an event loop back (core.event_loop): the lean transport does, and a
        test's MockTransport never waits; httpx's own transports, which a proxy needs, block."""
        client = self.client
        return not client._mounts and not isinstance(client._transport, httpx.HTTPTransport)

    @staticmethod
    def get_available_providers() -> list[str]:
        """Every provider the engine knows, configured or not."""
        return [cls.name for cls in PROVIDER_CLASSES]

    @staticmethod
    def provider_class(name: str) -> type[BaseProvider]:
        try:
            return _BY_NAME[str(name)]
        except KeyError:
            choices = ", ".join(_BY_NAME)
            raise UnknownProviderError(f"Unknown provider {name!r}; choose one of: {choices}.") from None

    def get_provider(self, name: str) -> BaseProvider:
        cls = self.provider_class(name)
        if cls.name not in self._cache:
            self._cache[cls.name] = cls(
                client=None if cls.simulated else self.client,
                api_key=self.settings.api_key(cls.name),
                base_url=self.settings.base_url(cls.name),
                settings=self.settings,
                retry=self.retry,
                sleep=self.sleep,
            )
        return self._cache[cls.name]

    def is_configured(self, name: str) -> bool:
        """True when calls can reach the real upstream (key set and no configuration problem)."""
        return self.get_provider(name).configuration_problem() is None

    def configured_providers(self) -> list[str]:
        """The providers offered for real calls (the sandbox is always offered)."""
        return [n for n in self.get_available_providers() if self.is_configured(n)]

    def configuration_problems(self) -> dict[str, str]:
        """Provider -> why it cannot make real calls (a missing key, a retired URL)."""
        out = {}
        for n in self.get_available_providers():
            problem = self.get_provider(n).configuration_problem()
            if problem:
                out[n] = problem
        return out

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
