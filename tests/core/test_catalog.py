from decimal import Decimal
from pathlib import Path

import pytest

from core.catalog import (
    CatalogFileError,
    UnknownHardwareError,
    get_hardware,
    list_hardware,
    list_models,
    load_catalogs,
    parse_hardware,
    parse_models,
)
from core.config import DATA_DIR
from core.db import Database

REQUIRED = {
    "openai": {"gpt-4o", "gpt-4o-mini", "whisper-1", "tts-1", "tts-1-hd", "dall-e-3"},
    "anthropic": {"claude-sonnet-4-5"},
    "together_ai": {"meta-llama/Llama-3.3-70B-Instruct-Turbo"},
    "minimax": {"speech-02-hd", "speech-02-turbo", "music-2.0", "voice-clone"},
    "huggingface": {"facebook/mms-tts-eng", "openai/whisper-large-v3", "suno/bark", "meta-llama/Llama-3.1-8B-Instruct"},
}


def test_catalog_has_required_entries_with_sources(runtime: Database) -> None:
    with runtime.session() as s:
        models = list_models(s)
        hardware = {h.id: h for h in list_hardware(s)}
    ids = {(m.provider, m.model_id) for m in models}
    for provider, wanted in REQUIRED.items():
        assert {(provider, w) for w in wanted} <= ids
    assert {m.category for m in models if m.provider == "sandbox"} == {
        "chat",
        "tts",
        "speech_to_text",
        "music",
        "voice_clone",
        "image",
    }
    assert all(m.price_source and m.price_as_of for m in models)
    assert {k: str(v.hourly_usd) for k, v in hardware.items()} == {
        "T4": "0.600000000",
        "L4": "0.800000000",
        "A10G": "1.000000000",
        "A100": "4.000000000",
    }
    assert [hardware[k].gpu_memory_gb for k in ("T4", "L4", "A10G", "A100")] == [16, 24, 24, 80]


def test_init_twice_changes_nothing(runtime: Database) -> None:
    report = runtime.init()
    assert not report.changed
    with runtime.session() as s:
        assert not load_catalogs(s).changed


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "models.yaml"
    p.write_text(text)
    return p


def test_malformed_catalog_names_file_line_and_field(tmp_path: Path) -> None:
    good = (DATA_DIR / "models.yaml").read_text()
    broken = good.replace('input_per_1m_usd: "2.50"', 'input_per_1m_usd: "two fifty"', 1)
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "two fifty" in t)
    with pytest.raises(CatalogFileError) as exc:
        parse_models(write(tmp_path, broken))
    assert f"models.yaml, line {line}, field 'input_per_1m_usd'" in str(exc.value)


def test_bad_category_and_missing_field(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match=r"line 3, field 'category'.*not one of"):
        parse_models(
            write(
                tmp_path,
                "models:\n  - provider: x\n    category: video\n    model_id: m\n    model_name: n\n"
                "    deployment_type: api_proxy\n    cost_unit: token\n"
                "    price_source: s\n    price_as_of: '2026-01-01'\n",
            )
        )
    with pytest.raises(CatalogFileError, match="field 'price_source': is required"):
        parse_models(
            write(
                tmp_path,
                "models:\n  - provider: x\n    category: chat\n    model_id: m\n    model_name: n\n"
                "    deployment_type: api_proxy\n    cost_unit: token\n    price_as_of: x\n",
            )
        )


def test_float_prices_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="quoted strings"):
        parse_models(
            write(
                tmp_path,
                "models:\n  - provider: x\n    category: chat\n    model_id: m\n    model_name: n\n"
                "    deployment_type: api_proxy\n    cost_unit: token\n    input_per_1m_usd: 0.1\n"
                "    price_source: s\n    price_as_of: x\n",
            )
        )


def test_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="line 2"):
        parse_models(write(tmp_path, "models:\n  - provider: [unclosed\n"))


def test_hardware_answers_to_its_id_and_hugging_faces_instance_type(runtime: Database) -> None:
    with runtime.session() as s:
        for name, hw_id in [
            ("T4", "T4"),
            ("a10g", "A10G"),
            ("nvidia-t4", "T4"),
            (" NVIDIA-L4 ", "L4"),
            ("nvidia-a10g", "A10G"),
            ("nvidia-a100", "A100"),
        ]:
            assert get_hardware(s, name).id == hw_id
        with pytest.raises(UnknownHardwareError, match=r"'nvidia-h100'; choose one of: T4 \(nvidia-t4\), L4"):
            get_hardware(s, "nvidia-h100")
        dedicated = {m.model_id: m for m in list_models(s, provider="huggingface_endpoint")}
    tts = dedicated["facebook/mms-tts-eng"]  # models.yaml writes hardware_type: nvidia-t4, as the specification does
    assert (tts.hardware_type, tts.hardware_instance_type, tts.hardware_label) == ("T4", "nvidia-t4", "T4 (nvidia-t4)")
    assert dedicated["meta-llama/Llama-3.1-8B-Instruct"].hardware_label == "L4 (nvidia-l4)"


def test_a_models_hardware_must_be_in_the_hardware_catalog(tmp_path: Path) -> None:
    hardware = parse_hardware(DATA_DIR / "hardware.yaml")
    good = (DATA_DIR / "models.yaml").read_text()
    broken = good.replace("hardware_type: nvidia-t4", "hardware_type: nvidia-h100", 1)
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "nvidia-h100" in t)
    with pytest.raises(CatalogFileError, match=rf"line {line}, field 'hardware_type'.*T4 \(nvidia-t4\)"):
        parse_models(write(tmp_path, broken), hardware)
    by_id = {(r["provider"], r["model_id"]): r for r in parse_models(write(tmp_path, good), hardware)}
    assert by_id[("huggingface_endpoint", "facebook/mms-tts-eng")]["hardware_type"] == "T4"


def test_serverless_cold_starts_are_catalog_figures(runtime: Database, tmp_path: Path) -> None:
    with runtime.session() as s:
        models = {m.key: m for m in list_models(s)}
    tts = models["huggingface/facebook/mms-tts-eng"]
    assert (tts.serverless_cold_start_s, tts.serverless_cold_start_share) == (Decimal("5"), Decimal("0.05"))
    assert models["openai/tts-1"].serverless_cold_start_s is None  # an API proxy: no cold starts
    good = (DATA_DIR / "models.yaml").read_text()
    broken = good.replace('serverless_cold_start_share: "0.05"', 'serverless_cold_start_share: "5"', 1)
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if 'serverless_cold_start_share: "5"' in t)
    with pytest.raises(CatalogFileError, match=rf"line {line}, field 'serverless_cold_start_share'.*0\.05 = 5%"):
        parse_models(write(tmp_path, broken))
