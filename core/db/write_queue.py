"""The queue a SQLite database's writers wait in, within one process and across processes.

SQLite lets one writer in at a time. A BEGIN IMMEDIATE that finds the write lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10 ... 100 ms between tries: under concurrent calls most of a write's time went to
those sleeps, and a writer could wake up just after another one had taken the lock again. So the ledger's writers
queue instead: on a thread lock inside the process, then on an exclusive `flock` of a file beside the database
(`<database>-writers`) across processes (several gateway workers, the app, the command line). Both wake the next
writer the moment the previous one is done. Writers that do not queue here (the ORM's rare writes) still meet the
busy handler, so correctness never depends on this queue; only waiting does.

Where the file cannot be made (a read-only folder) or `fcntl` does not exist (Windows), only the thread lock is
taken and other processes meet the busy handler, as before.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class WriteQueue:
    """A context manager: enter to be the database's one writer (in this process and, for a file, across)."""

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_path}-writers" if database_path and fcntl is not None else None
        self._fd: int | None = None
        self._pid = 0
        self._locked_file = False

    def _file(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own (a flock is per open file)
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self._path = None  # cannot be made: the busy handler queues other processes
                return None
            self._pid = os.getpid()
        return self._fd

    def close_file(self) -> None:
        """Close the queue's file (a writer opens it again): taken under the thread lock, so no writer of this process
        holds its flock, which closing it would release."""
        with self._threads:
            fd, self._fd = self._fd, None
            if fd is not None and self._pid == os.getpid():
                os.close(fd)

    def __enter__(self) -> WriteQueue:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    self._locked_file = True
                except OSError:  # a file system without flock: the busy handler queues other processes
                    self._path = None
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._locked_file:
                self._locked_file = False
                fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
        finally:
            self._threads.release()
