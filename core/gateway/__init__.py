"""The HTTP gateway: an OpenAI- and Anthropic-compatible API for the company's users' own apps, authenticated by
per-user API keys and billed through the same ledger as the Playground. An interface like the pages and the command
line: it imports only `core.services` (and access, errors, config); keys, limits and billing live behind that door.
`python -m core serve` runs it."""

from core.gateway.app import create_app

__all__ = ["create_app"]
