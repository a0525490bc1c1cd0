"""Where `generate --out` puts audio or image output: the path is checked before the call is made (and billed), and
bytes that were paid for are never lost: if writing them fails after billing, they go to a file in the system's
temporary folder and the command says where.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import InvalidInputError


def check_writable(path: Path | None) -> None:
    """Refuse, before any credit is held, an --out path that cannot be written (or the current folder, by default)."""
    target = path if path is not None else Path.cwd() / "generation.out"
    if target.is_dir():
        raise InvalidInputError(f"--out {target} is a folder; give a file name, e.g. {target / 'speech.mp3'}.")
    folder = target.parent if str(target.parent) else Path.cwd()
    if not folder.is_dir():
        raise InvalidInputError(
            f"--out {target}: the folder {folder} does not exist; create it or choose another path."
        )
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InvalidInputError(f"--out {target} cannot be written (permission denied); choose another path.")


def deliver(data: bytes, path: Path, suffix: str) -> tuple[Path, str | None]:
    """Write paid-for bytes to `path`; if that fails, to a temporary file. Returns (where they are, why not `path`)."""
    try:
        path.write_bytes(data)
        return path, None
    except OSError as exc:
        fd, fallback = tempfile.mkstemp(prefix="generation-", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return Path(fallback), f"could not write {path} ({exc.strerror or exc}); the output was saved to {fallback}"
