"""`python -m core generate` end to end against a loopback server answering like OpenAI (fake key, overridden URL)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from core.billing import BillingService
from core.cli import main
from core.config import load_settings
from core.db import Database
from core.users import add_user
from tests.core.providers.fakes import wav_bytes
from tests.support.loopback import PNG_1PX, TOOL_CALLS_STREAMED, LoopbackState, loopback_openai

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-fake-cli-test-000000"


@pytest.fixture
def server() -> Iterator[tuple[str, LoopbackState]]:
    with loopback_openai() as s:
        yield s


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: tuple[str, LoopbackState]) -> dict[str, str]:
    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ANALYTICS_PATH": str(tmp_path / "a.duckdb"),
        "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": server[0],
    }
    for k in ("ANTHROPIC_API_KEY", "MINIMAX_API_KEY", "TOGETHER_API_KEY", "HUGGINGFACE_API_KEY", "HF_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    rt = Database(load_settings())
    rt.init()
    with rt.session() as s:
        user = add_user(s, email="pm@example.com", name="PM", role="pm", markup_pct=Decimal(100))
    BillingService(rt.session_factory, rt.settings).grant(user.id, 500, note="test")
    rt.dispose()
    return values


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", "--user", "pm@example.com", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_chat_json_reports_usage_and_exact_cost(env: dict, server: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--model", "gpt-4o-mini", "--text", "Say hello", "--max-tokens", "400", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["output"] == "Hello from the loopback."
    assert data["usage"] == {"input_tokens": 1200, "output_tokens": 300, "cached_tokens": 1024, "requests": 1}
    # 176 x $0.15 + 1024 x $0.075 + 300 x $0.60, per 1M tokens
    assert data["base_cost_usd"] == "0.000283200"
    assert (data["base_credits"], data["markup_pct"], data["credits_charged"], data["balance_after"]) == (
        1,
        "100.0000",
        2,
        498,
    )
    assert data["provider"] == "openai" and data["model_id"] == "gpt-4o-mini"
    assert isinstance(data["transaction_id"], int) and isinstance(data["latency_ms"], int)
    assert data["cache_hit"] is False and data["sandbox"] is False
    _, state = server
    [req] = state.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert json.loads(req.body) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 400,
    }


def test_streamed_chat_prints_text_and_the_cost_line(
    env: dict, server: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--model", "gpt-4o-mini", "--text", "hi", "--stream")
    assert code == 0
    assert out == "Hello from the loopback.\n"
    assert "= 1 credit ·" in err and "charged 2 credits" in err and "balance 498" in err
    assert json.loads(server[1].requests[0].body)["stream_options"] == {"include_usage": True}


def test_tts_writes_the_audio_file(env: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "hello.mp3"
    code, out, _ = run(
        capsys, "--model", "tts-1", "--text", "Hello world", "--voice", "nova", "--out", str(out_file), "--json"
    )
    data = json.loads(out)
    assert code == 0 and data["output"] == str(out_file) and out_file.read_bytes()[:2] == b"\xff\xfb"
    assert data["usage"]["characters"] == 11 and data["base_cost_usd"] == "0.000165000"


def test_a_bad_out_path_is_refused_before_the_call_and_charges_nothing(
    env: dict, server: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "hello.mp3"
    code, _out, err = run(capsys, "--model", "tts-1", "--text", "Hello world", "--out", str(missing))
    # before: the call was made and billed, then writing failed and the audio was lost
    assert code == 2 and "does not exist" in err and server[1].requests == []
    assert main(["credits", "balance", "--user", "pm@example.com", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 500


def test_output_that_cannot_be_written_after_billing_is_saved_elsewhere(
    env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "hello.mp3"

    def disk_full(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    code, out, err = run(capsys, "--model", "tts-1", "--text", "Hello world", "--out", str(out_file), "--json")
    monkeypatch.undo()
    saved = Path(json.loads(out)["output"])
    assert code == 0 and saved != out_file and saved.read_bytes()[:2] == b"\xff\xfb"
    assert "No space left on device" in err and str(saved) in err
    assert f"billed as transaction {json.loads(out)['transaction_id']})" in err
    saved.unlink()


def test_transcription_from_a_file(env: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(wav_bytes(42, rate=8000))  # the loopback answers usage {type: duration, seconds: 42}
    code, out, _ = run(capsys, "--model", "whisper-1", "--file", str(audio), "--json")
    data = json.loads(out)
    assert code == 0 and data["output"] == "Hello there." and data["usage"]["seconds"] == "42"
    assert data["base_cost_usd"] == "0.004200000" and data["credits_charged"] == 2


def test_a_cache_hit_says_the_provider_was_not_called_and_what_the_call_would_have_cost(
    env: dict, server: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(wav_bytes(42, rate=8000))
    assert run(capsys, "--model", "whisper-1", "--file", str(audio))[0] == 0
    code, out, err = run(capsys, "--model", "whisper-1", "--file", str(audio))
    assert code == 0 and out == "Hello there.\n" and len(server[1].requests) == 1
    assert "catalog $0.0042 = 1 credit ·" in err and "charged 2 credits" in err
    assert "cache hit (provider not called)" in err
    code, out, _ = run(capsys, "--model", "whisper-1", "--file", str(audio), "--json")
    data = json.loads(out)
    assert data["cache_hit"] is True and (data["base_cost_usd"], data["catalog_cost_usd"]) == ("0", "0.004200000")
    assert (data["base_credits"], data["credits_charged"]) == (1, 2)


def test_upstream_401_is_one_line_and_exit_2(env: dict, server: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    server[1].status_override = 401
    code, out, err = run(capsys, "--model", "gpt-4o-mini", "--text", "hi")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: OpenAI refused the API key (401: Incorrect API key")


def test_user_mistakes_are_one_line(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--model", "gpt-9", "--text", "hi")
    assert code == 2 and "Unknown model 'gpt-9'" in err
    code, _, err = run(capsys, "--model", "whisper-1", "--text", "hi")
    assert code == 2 and "needs an audio file" in err
    code, _, err = run(capsys, "--model", "claude-haiku-4-5", "--text", "hi")
    assert code == 2 and "ANTHROPIC_API_KEY" in err


def test_sandbox_as_a_real_process(env: dict) -> None:
    """The whole command in its own process, as a person runs it."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "generate",
            "--user",
            "pm@example.com",
            "--model",
            "sandbox-chat",
            "--text",
            "Hello",
            "--json",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["sandbox"] is True and data["credits_charged"] == 0 and data["balance_after"] == 500
    assert Decimal(data["base_cost_usd"]) > 0 and "simulated" in data["output"]


def test_json_output_flags_reach_the_upstream_and_bad_schemas_cost_nothing(
    env: dict, server: tuple, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, state = server
    code, _, err = run(capsys, "--model", "gpt-4o-mini", "--text", "A city, in JSON", "--json-object")
    assert code == 0, err
    assert json.loads(state.requests[-1].body)["response_format"] == {"type": "json_object"}
    schema = {"title": "City answer", "type": "object", "properties": {"city": {"type": "string"}}}
    (tmp_path / "city.json").write_text(json.dumps(schema))
    code, _, err = run(
        capsys, "--model", "gpt-4o-mini", "--text", "A city", "--json-schema", str(tmp_path / "city.json")
    )
    assert code == 0, err
    sent = json.loads(state.requests[-1].body)["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "City_answer", "schema": schema}}
    calls = len(state.requests)
    (tmp_path / "bad.json").write_text("[1, 2")
    for args, says in (
        (["--json-schema", str(tmp_path / "bad.json")], "is not a JSON file"),
        (["--json-schema", str(tmp_path / "missing.json")], "Cannot read the JSON Schema"),
        (["--json-object", "--json-schema", str(tmp_path / "city.json")], "not allowed with argument"),
    ):
        code, _, err = run(capsys, "--model", "gpt-4o-mini", "--text", "A city", *args)
        assert code == 2 and says in err, err
    code, _, err = run(capsys, "--model", "tts-1", "--text", "Hi", "--json-object")
    assert code == 2 and "for chat calls only" in err
    assert len(state.requests) == calls  # nothing sent, nothing charged


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tools_reach_the_upstream_and_the_calls_are_printed_plain_and_streamed(
    env: dict, server: tuple, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, state = server
    (tmp_path / "tools.json").write_text(json.dumps([WEATHER_TOOL]))
    tools = ["--tools", str(tmp_path / "tools.json")]
    code, out, err = run(capsys, "--model", "gpt-4o-mini", "--text", "Weather?", *tools, "--tool-choice", "get_weather")
    assert code == 0, err
    sent = json.loads(state.requests[-1].body)
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out == "Hello from the loopback.\n" and "charged" in err  # the loopback answers plain chat in words
    # streamed: the loopback's recorded answer calls two functions, their arguments in pieces
    code, out, err = run(capsys, "--model", "gpt-4o-mini", "--text", "Weather and a stock price?", *tools, "--stream")
    assert code == 0, err
    assert json.loads(state.requests[-1].body)["stream"] is True
    lines = out.splitlines()
    assert lines[0] == ""  # no text before the calls
    assert lines[1:] == [f"call {name}({arguments}) [id {call_id}]" for call_id, name, arguments in TOOL_CALLS_STREAMED]
    code, out, err = run(capsys, "--model", "gpt-4o-mini", "--text", "Weather?", *tools, "--stream", "--json")
    assert code == 0, err
    assert [c["function"]["name"] for c in json.loads(out)["tool_calls"]] == ["GetWeatherArgs", "get_stock_price"]


def test_the_sandbox_calls_the_tool_on_the_command_line(
    env: dict, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "tool.json").write_text(json.dumps(WEATHER_TOOL))  # one tool alone is taken too
    code, out, err = run(
        capsys,
        "--model",
        "sandbox:openai/gpt-4o",
        "--text",
        "Weather in Paris?",
        "--tools",
        str(tmp_path / "tool.json"),
    )
    assert code == 0, err
    [line] = out.splitlines()
    assert line.startswith('call get_weather({"city": "simulated"}) [id call_') and "simulated" in err


def test_bad_tools_cost_nothing(env: dict, server: tuple, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, state = server
    (tmp_path / "tools.json").write_text(json.dumps([WEATHER_TOOL]))
    (tmp_path / "bad.json").write_text(json.dumps([{"type": "retrieval"}]))
    calls = len(state.requests)
    for args, says in (
        (["--tools", str(tmp_path / "missing.json")], "Cannot read a list of function tools"),
        (["--tools", str(tmp_path / "bad.json")], "function tools only"),
        (["--tool-choice", "auto"], "--tool-choice needs --tools"),
        (["--tools", str(tmp_path / "tools.json"), "--tool-choice", "nope"], "not among `tools`"),
    ):
        code, _, err = run(capsys, "--model", "gpt-4o-mini", "--text", "Weather?", *args)
        assert code == 2 and says in err, err
    code, _, err = run(capsys, "--model", "tts-1", "--text", "Hi", "--tools", str(tmp_path / "tools.json"))
    assert code == 2 and "chat" in err, err
    assert len(state.requests) == calls  # nothing sent, nothing charged


def test_images_reach_the_upstream_with_the_prompt_and_bad_ones_cost_nothing(
    env: dict, server: tuple, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, state = server
    (tmp_path / "dot.png").write_bytes(PNG_1PX)
    photo = "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
    code, out, err = run(
        capsys, "--model", "gpt-4o-mini", "--text", "Compare", "--image", str(tmp_path / "dot.png"), "--image", photo
    )
    assert code == 0 and out == "Hello from the loopback.\n", err
    png = "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
    assert json.loads(state.requests[-1].body)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": png}},
                {"type": "image_url", "image_url": {"url": photo}},
            ],
        }
    ]
    calls = len(state.requests)
    (tmp_path / "notes.txt").write_text("not an image")
    for args, says in (
        (["--image", str(tmp_path / "missing.png")], "Cannot read the image"),
        (["--image", str(tmp_path / "notes.txt")], ".png, .jpg, .gif or .webp"),
        (["--image", "ftp://x.io/a.png"], ".png, .jpg, .gif or .webp"),
    ):
        code, _, err = run(capsys, "--model", "gpt-4o-mini", "--text", "What is it?", *args)
        assert code == 2 and says in err, err
    code, _, err = run(capsys, "--model", "tts-1", "--text", "Hi", "--image", photo)
    assert code == 2 and "for chat models" in err, err
    assert len(state.requests) == calls  # nothing sent, nothing charged
