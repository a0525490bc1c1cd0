"""GET /v1/models answers what a key can call now: a provider without its key would answer 503, so its models are
not listed; the sandbox (and its simulated twins) always are."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.config import Secret
from core.db import Database
from core.providers import AIProviderFactory
from core.services import SYSTEM, Services
from core.services.errors import UnknownModelError


def test_models_lists_only_providers_that_can_answer(sqlite_runtime: Database) -> None:
    settings = replace(sqlite_runtime.settings, api_keys={"openai": Secret("sk-test")})
    services = Services(sqlite_runtime, providers=AIProviderFactory(settings))
    try:
        providers = {m.provider for m in services.keys.models(SYSTEM)}
    finally:
        services.close()
    assert "openai" in providers and "sandbox" in providers
    assert not providers & {"anthropic", "minimax", "together_ai"}


def test_without_any_key_no_keyed_provider_is_listed(sqlite_runtime: Database) -> None:
    settings = replace(sqlite_runtime.settings, api_keys={})
    services = Services(sqlite_runtime, providers=AIProviderFactory(settings))
    try:
        models = services.keys.models(SYSTEM)
    finally:
        services.close()
    providers = {m.provider for m in models}
    assert "sandbox" in providers and not providers & {"openai", "anthropic", "minimax", "together_ai", "huggingface"}


def test_one_model_is_one_of_the_list_and_others_are_unknown(sqlite_runtime: Database) -> None:
    settings = replace(sqlite_runtime.settings, api_keys={"openai": Secret("sk-test")})
    services = Services(sqlite_runtime, providers=AIProviderFactory(settings))
    try:
        assert services.keys.model(SYSTEM, "gpt-4o-mini").provider == "openai"
        with pytest.raises(UnknownModelError, match="GET /v1/models"):
            services.keys.model(SYSTEM, "claude-haiku-4-5")  # its provider has no key here: it would answer 503
    finally:
        services.close()


def test_an_id_served_serverless_and_dedicated_is_listed_only_when_its_serverless_provider_answers(
    sqlite_runtime: Database,
) -> None:
    # facebook/mms-tts-eng is in the catalog twice: Hugging Face serverless and a dedicated endpoint. A call by that id
    # reaches the serverless entry (catalog.get_model), so without a Hugging Face key it would answer 503.
    for keys, listed in (({}, set()), ({"huggingface": Secret("hf_test")}, {("huggingface", "inference_api")})):
        settings = replace(sqlite_runtime.settings, api_keys=keys)
        services = Services(sqlite_runtime, providers=AIProviderFactory(settings))
        try:
            models = services.keys.models(SYSTEM)
        finally:
            services.close()
        found = {(m.provider, m.deployment_type) for m in models if m.model_id == "facebook/mms-tts-eng"}
        assert found == listed, keys
