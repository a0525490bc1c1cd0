"""Ledger writes kept on local disk while the database cannot take them, posted when it can (the settlement spool).

A call whose output was delivered must be billed. `BillingService.settle` retries a settlement through a passing
database fault for about 27 s (core/billing/ledger.py); a database down for longer used to leave the call unbilled.
Now the settlement (or, for a failed call, the release of its hold with its failed usage row) is written here
instead: one JSON file per write, made durable (written to a temporary name, flushed to disk, renamed) before the
caller is answered. A drainer posts the files once the database answers again, oldest first.

Safe against doing a write twice or to the wrong ledger:
- A file names its hold, the hold's user and the hold's idempotency key. It is posted only if the database has that
  hold for that user under that key; otherwise it is set aside in `rejected/` with the reason, never posted.
- A hold already settled or released (the write committed before its answer was lost, or another drainer posted it)
  makes the file done without writing anything: charged once.
- A drainer claims a file by renaming it into `claimed/` with its process id: one rename wins. A claim whose process
  is gone is returned to the queue at the next drain.
- The default place is per database: beside a SQLite file (`<file>.settle-spool/`) or, for PostgreSQL, under
  `data/settle-spool/<hash of the URL>/`. An in-memory SQLite database has none.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy.engine import make_url

from core.billing.replays import PendingReply
from core.billing.types import Hold, UsageRecord
from core.catalog.types import ModelPrice
from core.errors import CoreError
from core.usage import Usage

log = logging.getLogger(__name__)

Kind = Literal["settle", "release"]
KINDS: tuple[str, ...] = ("settle", "release")
SUFFIX = ".json"
FORMAT = 1
DRAIN_FIRST_WAIT_SECONDS = 1.0  # the drainer's first wait after a drain the database refused; doubled each time ...
DRAIN_MAX_WAIT_SECONDS = 10.0  # ... up to this


class SpoolError(CoreError):
    """The spool's folder could not be written or read (disk full, no permission)."""


@dataclass(frozen=True, kw_only=True)
class SpooledWrite:
    """One ledger write waiting in the spool."""

    kind: Kind
    hold_id: int
    user_id: int
    idempotency_key: str
    record: UsageRecord | None  # the settled call's usage, or the failed call's (release)
    spooled_at: datetime
    reason: str  # why the database did not take it at the time
    name: str = ""  # the file's name
    rejected: str | None = None  # why it was set aside instead of posted (`rejected/` only)
    # a settled call's answer, for a retry with the caller's idempotency key (stored once the settlement is posted)
    reply: PendingReply | None = None


@dataclass
class DrainReport:
    posted: int = 0  # written to the ledger now
    already_written: int = 0  # its hold was settled or released already: nothing written, charged once
    rejected: int = 0  # set aside in rejected/ with the reason
    left: int = 0  # still waiting (the database refused again, or another process holds them)
    unavailable: str | None = None  # the database's error that stopped the drain
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class SpoolState:
    """What the spool holds: the writes waiting to be posted and those set aside for a person."""

    directory: Path | None  # None: this database has no spool (in memory)
    waiting: list[SpooledWrite]
    set_aside: list[SpooledWrite]


def default_spool_dir(database_url: str, sqlite_file: Path | None, data_dir: Path) -> Path | None:
    """Where a database's spool lives by default (None: nowhere, an in-memory database)."""
    if sqlite_file is not None:
        return sqlite_file.with_name(sqlite_file.name + ".settle-spool")
    if database_url.startswith("sqlite"):
        return None
    tag = hashlib.sha256(make_url(database_url).render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return data_dir / "settle-spool" / tag


# --- the file format -------------------------------------------------------------------------------------------


def _decimal_fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls) if "Decimal" in str(f.type)}


_MODEL_DECIMALS = _decimal_fields(ModelPrice)


def _model_from(data: dict[str, Any]) -> ModelPrice:
    known = {f.name for f in fields(ModelPrice)}
    values = {k: (Decimal(v) if k in _MODEL_DECIMALS and v is not None else v) for k, v in data.items() if k in known}
    return ModelPrice(**values)


def _record_to(record: UsageRecord) -> dict[str, Any]:
    data = {f.name: getattr(record, f.name) for f in fields(UsageRecord)}
    data["model"] = asdict(record.model)
    data["usage"] = {**asdict(record.usage), "seconds": str(record.usage.seconds)}
    data["base_cost_usd"] = str(record.base_cost_usd)
    return data


def _record_from(data: dict[str, Any]) -> UsageRecord:
    known = {f.name for f in fields(UsageRecord)}
    values = {k: v for k, v in data.items() if k in known}
    values["model"] = _model_from(values["model"])
    values["usage"] = Usage.from_dict(values["usage"])
    values["base_cost_usd"] = Decimal(values["base_cost_usd"])
    return UsageRecord(**values)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def encode(write: SpooledWrite) -> bytes:
    body = {
        "format": FORMAT,
        "kind": write.kind,
        "hold_id": write.hold_id,
        "user_id": write.user_id,
        "idempotency_key": write.idempotency_key,
        "record": None if write.record is None else _record_to(write.record),
        "spooled_at": write.spooled_at.isoformat(),
        "reason": write.reason,
        "rejected": write.rejected,
        "reply": None if write.reply is None else _reply_to(write.reply),
    }
    return json.dumps(body, default=_json_default, sort_keys=True).encode()


def decode(raw: bytes, name: str = "") -> SpooledWrite:
    body = json.loads(raw)
    if body.get("format") != FORMAT or body.get("kind") not in KINDS:
        raise ValueError(f"not a settlement spool file of format {FORMAT}")
    return SpooledWrite(
        kind=body["kind"],
        hold_id=int(body["hold_id"]),
        user_id=int(body["user_id"]),
        idempotency_key=str(body["idempotency_key"]),
        record=None if body["record"] is None else _record_from(body["record"]),
        spooled_at=datetime.fromisoformat(body["spooled_at"]),
        reason=str(body.get("reason") or ""),
        name=name,
        rejected=body.get("rejected"),
        reply=None if body.get("reply") is None else _reply_from(body["reply"]),
    )


def _reply_to(reply: PendingReply) -> dict[str, Any]:
    data = None if reply.data is None else base64.b64encode(reply.data).decode()
    return {"fingerprint": reply.fingerprint, "result": reply.result, "data": data}


def _reply_from(data: dict[str, Any]) -> PendingReply:
    raw = data.get("data")
    return PendingReply(
        fingerprint=str(data["fingerprint"]),
        result=dict(data["result"]),
        data=None if raw is None else base64.b64decode(raw),
    )


# --- the spool -------------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _private(path: Path) -> BinaryIO:
    """`path` opened for writing, readable by this user only: a file may hold a call's answer (kept for a retry with
    its idempotency key) and its usage."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class SettlementSpool:
    """The folder of waiting writes: `pending/`, `claimed/` (being posted), `rejected/` (set aside, for a person)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending = directory / "pending"
        self.claimed = directory / "claimed"
        self.rejected = directory / "rejected"

    # writing

    def put(
        self, kind: Kind, hold: Hold, record: UsageRecord | None, reason: str, reply: PendingReply | None = None
    ) -> str:
        """Keep one write durably (with the call's reply, for a retry with its idempotency key); returns its file's
        name. Raises SpoolError when it could not be kept."""
        write = SpooledWrite(
            kind=kind,
            hold_id=hold.id,
            user_id=hold.user_id,
            idempotency_key=hold.idempotency_key,
            record=record,
            spooled_at=datetime.now(UTC),
            reason=reason,
            reply=reply,
        )
        stamp = write.spooled_at.strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{kind}-{hold.id}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        try:
            self.pending.mkdir(parents=True, exist_ok=True)
            tmp = self.pending / f".{name}.tmp"
            with _private(tmp) as fh:
                fh.write(encode(write))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.rename(self.pending / name)
            _fsync_dir(self.pending)
        except OSError as exc:
            raise SpoolError(
                f"Could not keep the {kind} of hold {hold.id} in {self.pending} ({exc.strerror}): free some disk, "
                "or set SETTLE_SPOOL_DIR to a folder this user can write."
            ) from exc
        return name

    # reading

    def has_waiting(self) -> bool:
        """Anything pending or claimed (cheap: one directory listing, none when the folder does not exist)."""
        return any(self._names(self.pending)) or any(self._names(self.claimed))

    def settles(self, hold_id: int) -> bool:
        """Whether a settlement of `hold_id` waits (pending or being posted): by the file names alone, no file read."""
        tag = f"-settle-{hold_id}-"
        return any(tag in n for n in self._names(self.pending)) or any(tag in n for n in self._names(self.claimed))

    def waiting(self) -> list[SpooledWrite]:
        """The writes waiting (pending or being posted), oldest first; unreadable files are listed as rejected."""
        out = [self._read(self.pending / n) for n in self._names(self.pending)]
        out += [self._read(self.claimed / n) for n in self._names(self.claimed)]
        return sorted(out, key=lambda w: (w.spooled_at, w.name))

    def set_aside(self) -> list[SpooledWrite]:
        return [self._read(self.rejected / n) for n in self._names(self.rejected)]

    def state(self) -> SpoolState:
        return SpoolState(directory=self.directory, waiting=self.waiting(), set_aside=self.set_aside())

    @staticmethod
    def _names(folder: Path) -> list[str]:
        try:
            # not the hidden `.NAME.tmp` of a write that never completed: its caller was not told it was kept
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SpoolError(
                f"Cannot read the settlement spool at {folder} ({exc.strerror}): give this user access to it, or set "
                "SETTLE_SPOOL_DIR to a folder it can write."
            ) from exc
        return sorted(n for n in names if not n.startswith(".") and (n.endswith(SUFFIX) or SUFFIX + "." in n))

    @staticmethod
    def _read(path: Path) -> SpooledWrite:
        try:
            return decode(path.read_bytes(), path.name)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return SpooledWrite(
                kind="settle",
                hold_id=0,
                user_id=0,
                idempotency_key="",
                record=None,
                spooled_at=datetime.fromtimestamp(0, UTC),
                reason="",
                name=path.name,
                rejected=f"unreadable: {exc}",
            )

    # draining

    def drain(
        self,
        post: Callable[[SpooledWrite], str],
        is_unavailable: Callable[[BaseException], bool],
        is_refused: Callable[[BaseException], bool],
    ) -> DrainReport:
        """Post every waiting write, oldest first. `post(write)` writes it and returns "posted" or "already_written",
        or raises:
        - a database that is unavailable (`is_unavailable`) stops the drain, the rest left waiting;
        - a write the ledger refuses for good (`is_refused`: another database's hold, a model gone from the catalog)
          is set aside in `rejected/` with its reason, for a person;
        - any other error leaves that write waiting (tried again at the next drain) and the drain goes on."""
        report = DrainReport()
        self._return_orphans()
        for name in self._names(self.pending):
            mine = self._claim(name)
            if mine is None:
                continue  # another process took it
            try:
                write = decode(mine.read_bytes(), name)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._reject_raw(mine, name, f"unreadable: {exc}")
                report.rejected += 1
                continue
            try:
                outcome = post(write)
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0]
                if is_unavailable(exc):
                    self._unclaim(mine, name)
                    report.unavailable = f"{type(exc).__name__}: {first}"
                    break
                if is_refused(exc):
                    self._reject(mine, write, f"{type(exc).__name__}: {exc}")
                    report.rejected += 1
                else:
                    log.exception("settlement spool: posting %s failed; it waits for the next drain", name)
                    self._unclaim(mine, name)
                report.errors.append(f"{name}: {type(exc).__name__}: {first}")
                continue
            mine.unlink(missing_ok=True)
            if outcome == "already_written":
                report.already_written += 1
            else:
                report.posted += 1
        report.left = len(self._names(self.pending)) + len(self._names(self.claimed))
        return report

    def _claim(self, name: str) -> Path | None:
        self.claimed.mkdir(parents=True, exist_ok=True)
        target = self.claimed / f"{name}.{os.getpid()}"
        try:
            (self.pending / name).rename(target)
        except FileNotFoundError:
            return None
        return target

    def _unclaim(self, path: Path, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.rename(self.pending / name)

    def _return_orphans(self) -> None:
        """Claims whose process is gone go back to the queue (the process died mid-post: its hold says what was
        written, so posting again is safe)."""
        for n in self._names(self.claimed):
            base, _, pid = n.rpartition(".")
            if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.claimed / n).rename(self.pending / base)

    def _reject(self, path: Path, write: SpooledWrite, why: str) -> None:
        log.error("settlement spool: set aside %s (hold %s): %s", write.name, write.hold_id, why)
        self.rejected.mkdir(parents=True, exist_ok=True)
        kept = replace(write, rejected=why)
        target = self.rejected / write.name
        tmp = self.rejected / f".{write.name}.tmp"
        with _private(tmp) as fh:
            fh.write(encode(kept))
        tmp.rename(target)
        path.unlink(missing_ok=True)

    def _reject_raw(self, path: Path, name: str, why: str) -> None:
        log.error("settlement spool: set aside %s: %s", name, why)
        self.rejected.mkdir(parents=True, exist_ok=True)
        path.rename(self.rejected / name)


class SpoolDrainer:
    """Drains a spool on a background thread until it is empty, waiting longer after each refusal (1 s doubling to
    10 s). `wake()` starts it when it is not running; it stops by itself once nothing waits."""

    def __init__(self, drain: Callable[[], DrainReport], *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._drain = drain
        self._sleep = sleep
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last: DrainReport | None = None

    def wake(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="settle-spool-drainer", daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        wait = DRAIN_FIRST_WAIT_SECONDS
        while True:
            try:
                report = self._drain()
            except Exception:
                log.exception("settlement spool: the drain failed; trying again in %.0f s", wait)
                report = None
            self.last = report
            if report is not None and report.unavailable is None and report.left == 0:
                return
            self._sleep(wait)
            wait = min(wait * 2, DRAIN_MAX_WAIT_SECONDS)
