"""The analytics store on disk: immutable DuckDB versions published by an atomic symlink swap.

DuckDB lets one process open a database file for writing, and no other process may open it at all meanwhile. So the
store never writes a file anyone reads:

- `settings.analytics_path` (default `data/analytics.duckdb`) is a symlink to the current version,
  `analytics.duckdb.v000042`, a complete DuckDB database (so `duckdb data/analytics.duckdb` just works).
- A sync takes an exclusive `fcntl` lock (`analytics.duckdb.lock`; a second sync waits, then finds the store fresh),
  copies the current version to the next number (an incremental sync) or starts an empty one (a full rebuild),
  appends to it, checkpoints and closes it, and then swaps the symlink in one `rename`. Versions older than the
  previous one are deleted; a reader that still has one open keeps reading it (POSIX unlink semantics).
- Readers resolve the symlink and open that version read-only. Read-only opens by any number of processes coexist,
  and no writer ever opens a published version. Within a process one read-only connection per version is kept
  (DuckDB caches database instances by path, so a new version must have a new path) and each query gets a cursor.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from core.analytics.schema import SCHEMA_VERSION
from core.errors import CoreError

VERSION_RE = re.compile(r"\.v(\d{6})$")
LOCK_TIMEOUT_S = 900.0
READ_MEMORY_LIMIT = "2GB"


class AnalyticsUnavailableError(CoreError):
    """The analytics store has not been built yet (or was deleted)."""


class SyncBusyError(CoreError):
    """Another process held the sync lock for too long."""


@dataclass(frozen=True, kw_only=True)
class StoreState:
    """What the published version holds."""

    version: int
    path: Path
    schema_version: int
    source: str
    synced_at: datetime
    usage_watermark: int
    usage_anchor: str | None
    ledger_watermark: int
    ledger_anchor: str | None
    usage_rows: int
    ledger_rows: int
    rollup_tz: str
    rollup_credit_nano: int


_readers_lock = threading.Lock()
# store path -> (version file, its read-only connection, a memo of facts about that version for callers to fill)
_readers: dict[str, tuple[str, duckdb.DuckDBPyConnection, dict[str, Any]]] = {}


class AnalyticsStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).absolute()

    # ---- versions ------------------------------------------------------------------------------------------------
    def version_path(self, version: int) -> Path:
        return self.path.with_name(f"{self.path.name}.v{version:06d}")

    def current_file(self) -> Path | None:
        """The published version's file, or None when nothing is published."""
        if not self.path.is_symlink():
            return None
        target = self.path.parent / os.readlink(self.path)
        return target if target.exists() else None

    def current_version(self) -> int:
        current = self.current_file()
        m = VERSION_RE.search(current.name) if current else None
        return int(m.group(1)) if m else 0

    def version_key(self) -> str:
        """A key that changes whenever the published data changes (for caches): the version file and its identity."""
        current = self.current_file()
        if current is None:
            return ""
        st = current.stat()
        return f"{current}:{st.st_ino}:{st.st_mtime_ns}"

    def exists(self) -> bool:
        return self.current_file() is not None

    def publish(self, version_file: Path) -> None:
        """Point the store at `version_file` atomically, then delete versions older than the previous one."""
        previous = self.current_file()
        link_tmp = self.path.with_name(f".{self.path.name}.link-{os.getpid()}-{threading.get_ident()}")
        with contextlib.suppress(FileNotFoundError):
            link_tmp.unlink()
        os.symlink(version_file.name, link_tmp)
        os.replace(link_tmp, self.path)
        keep = {version_file.name} | ({previous.name} if previous else set())
        for f in self.path.parent.glob(f"{self.path.name}.v*"):
            base = f.name.removesuffix(".wal")
            if base not in keep:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()

    def new_version_file(self, *, copy_current: bool) -> Path:
        """The next version's file: a copy of the current one (incremental) or nothing yet (full rebuild)."""
        target = self.version_path(self.current_version() + 1)
        for stale in (target, target.with_name(target.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        current = self.current_file()
        if copy_current and current is not None:
            shutil.copyfile(current, target)
        return target

    # ---- locking -------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def sync_lock(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as fh:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise SyncBusyError(
                            f"Another process has been syncing {self.path} for over {timeout:.0f} s; "
                            "wait for it or stop it, then retry."
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ---- reading -------------------------------------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only cursor on the published version (cheap: one connection per version per process)."""
        return self.connect_versioned()[0]

    def connect_versioned(self) -> tuple[duckdb.DuckDBPyConnection, int, dict[str, Any]]:
        """A read-only cursor on the published version, that version's number, and a memo dict that lives as long as
        this process reads that version file (facts computed from an immutable version can be kept in it)."""
        key = str(self.path)
        for _attempt in range(5):
            current = self.current_file()
            if current is None:
                raise AnalyticsUnavailableError(
                    f"The analytics store {self.path} has not been built; run `python -m core spend sync`."
                )
            version = int(m.group(1)) if (m := VERSION_RE.search(current.name)) else 0
            with _readers_lock:
                cached = _readers.get(key)
                if cached is not None and cached[0] == str(current):
                    return cached[1].cursor(), version, cached[2]
                try:
                    con = duckdb.connect(str(current), read_only=True, config={"memory_limit": READ_MEMORY_LIMIT})
                except duckdb.IOException:
                    # the version was replaced and deleted between resolving the link and opening it: resolve again
                    time.sleep(0.02)
                    continue
                # the previous version's connection is dropped, not closed: cursors other threads hold stay valid
                memo: dict[str, Any] = {}
                _readers[key] = (str(current), con, memo)
                return con.cursor(), version, memo
        raise AnalyticsUnavailableError(f"Could not open the analytics store {self.path}; retry in a moment.")

    def state(self) -> StoreState | None:
        """The published version's sync state, or None when nothing is published."""
        if not self.exists():
            return None
        con = self.connect()
        try:
            rows = con.execute(
                "SELECT schema_version, source, synced_at, usage_watermark, usage_anchor, ledger_watermark, "
                "ledger_anchor, usage_rows, ledger_rows, rollup_tz, rollup_credit_nano FROM sync_state"
            ).fetchall()
        except (duckdb.CatalogException, duckdb.BinderException):
            return None  # not a store, or one from an older schema: rebuilt in full
        finally:
            con.close()
        if not rows:
            return None
        row = rows[0]
        return StoreState(
            version=self.current_version(),
            path=self.path,
            schema_version=int(row[0]),
            source=str(row[1]),
            synced_at=row[2],
            usage_watermark=int(row[3]),
            usage_anchor=row[4],
            ledger_watermark=int(row[5]),
            ledger_anchor=row[6],
            usage_rows=int(row[7]),
            ledger_rows=int(row[8]),
            rollup_tz=str(row[9]),
            rollup_credit_nano=int(row[10]),
        )

    def is_current_schema(self, state: StoreState | None) -> bool:
        return state is not None and state.schema_version == SCHEMA_VERSION

    # ---- freshness -----------------------------------------------------------------------------------------------
    @property
    def _checked_path(self) -> Path:
        return self.path.with_name(self.path.name + ".checked")

    def mark_checked(self, version: int, at: datetime) -> None:
        """Record that the source had nothing new at `at` (so the published version is complete up to then)."""
        tmp = self._checked_path.with_name(f".{self._checked_path.name}-{os.getpid()}")
        tmp.write_text(f"{version} {at.isoformat()}\n")
        os.replace(tmp, self._checked_path)

    def as_of(self, state: StoreState) -> datetime:
        """The instant the published version is known complete up to: its sync, or a later check that found nothing
        new (naive UTC)."""
        return self.as_of_version(state.version, state.synced_at)

    def as_of_version(self, version: int, synced_at: datetime) -> datetime:
        try:
            checked_version, at = self._checked_path.read_text().split()
        except (FileNotFoundError, ValueError):
            return synced_at
        if int(checked_version) != version:
            return synced_at
        return max(synced_at, datetime.fromisoformat(at))
