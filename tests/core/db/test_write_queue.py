"""The SQLite writers' queue: one writer at a time across threads and across processes, and a database whose folder
cannot hold the queue's file still works (queued within the process)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.db.write_queue import WriteQueue

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")


def _hold(db: str, events: str, inside: Any, release: Any) -> None:
    with WriteQueue(db):
        Path(events).write_text("other in\n")
        inside.set()
        release.wait(10)
        with open(events, "a") as f:
            f.write("other out\n")


def test_a_writer_waits_for_another_process_to_finish(tmp_path: Path) -> None:
    db, events = str(tmp_path / "app.db"), str(tmp_path / "events.txt")
    ctx = multiprocessing.get_context("spawn")
    inside, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(db, events, inside, release))
    other.start()
    try:
        assert inside.wait(30)
        entered = threading.Event()

        def write() -> None:
            with WriteQueue(db):
                with open(events, "a") as f:
                    f.write("this in\n")
                entered.set()

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.2)
        assert not entered.is_set()  # queued behind the other process, not inside with it
        release.set()
        writer.join(10)
        assert entered.is_set()
        assert Path(events).read_text().splitlines() == ["other in", "other out", "this in"]
    finally:
        release.set()
        other.join(10)


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    queue = WriteQueue(str(tmp_path / "app.db"))
    inside = 0
    most = 0
    lock = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        for _ in range(50):
            with queue:
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1


def test_a_folder_that_cannot_hold_the_file_falls_back_to_the_thread_lock(tmp_path: Path) -> None:
    queue = WriteQueue(str(tmp_path / "no-such-folder" / "app.db"))  # os.open fails, as in a read-only folder
    with queue:
        pass
    with queue:  # usable again
        pass
    assert not (tmp_path / "no-such-folder").exists()


def test_an_in_memory_database_needs_no_file() -> None:
    queue = WriteQueue(None)
    with queue:
        pass
