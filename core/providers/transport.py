"""The upstream transport: HTTP/1.1 with kept-alive connections, under the providers' shared `httpx.Client`.

Providers keep talking to an `httpx.Client` (tests inject one on a `MockTransport`); this only replaces what sits under
it. httpx's default transport (httpcore on h11) cost ~0.8 ms of CPU per call in the gateway, about a quarter of a
billed chat completion's Python time (py-spy under benchmarks/gateway_load.py): h11's event machinery, its locks and
its per-request socket checks. This writes the request in one `sendall` and parses the answer with httptools
(uvicorn's parser, a runtime dependency already), on plain or TLS sockets (TLS verified with httpx's own default
context, so SSL_CERT_FILE and certifi apply as before).

Behaviour kept from httpx's default transport, since the providers' retries and error mapping rely on it:
- timeouts from the request (`connect`, `read`, `write`) raise httpx's ConnectTimeout, ReadTimeout and WriteTimeout;
- a refused or broken connection raises ConnectError, ReadError or WriteError; a malformed answer, or a connection
  closed before the answer is whole, RemoteProtocolError;
- a kept-alive connection is reused only while the server has not closed it (checked before each reuse), and a request
  is never sent twice here (the providers' retry policy decides that);
- streamed bodies are read as they arrive; a response closed before its end closes its connection;
- request bodies of unknown length go out chunked; HEAD answers have no body.
Proxies from the environment stay with httpx (it mounts its own transports for them).

In a call the gateway runs on its event loop (core.event_loop), the sockets are non-blocking and every wait (the
name lookup, the connection, the TLS handshake, a send the kernel cannot take at once, a read) hands the loop back to
the other calls; the timeouts and errors are the same.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httptools
import httpx

from core import event_loop

DEFAULT_PORTS = {"http": 80, "https": 443}
READ_SIZE = 65536
MAX_IDLE = 128  # kept-alive connections kept, over all hosts
KEEPALIVE_SECONDS = 30.0
_POLL = getattr(select, "poll", None)


def _readable(sock: socket.socket) -> bool:
    """True when an idle connection has something to read: the server closed it (or sent what it should not)."""
    if _POLL is not None:
        poller = _POLL()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # pragma: no cover - systems without poll


class _Answer:
    """httptools callbacks for one response: status, headers, then body pieces as they are parsed."""

    __slots__ = ("body", "done", "headers", "headers_done", "keep_alive", "parser", "reason")

    def __init__(self) -> None:
        self.parser: Any = None
        self.keep_alive = False
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.body: list[bytes] = []
        self.done = False

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # read here: once the message is complete it says False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Connection:
    __slots__ = ("idle_since", "key", "read_timeout", "sock")

    def __init__(self, key: tuple[str, str, int], sock: socket.socket) -> None:
        self.key = key
        self.sock = sock
        self.idle_since = 0.0
        self.read_timeout: float | None = None  # the current request's

    def for_mode(self, on_loop: bool) -> None:
        """Non-blocking for a call on the event loop; with the request's timeouts (set as they apply) otherwise."""
        if on_loop and self.sock.gettimeout() != 0.0:
            self.sock.setblocking(False)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # closing a broken socket
            self.sock.close()


class _Body(httpx.SyncByteStream):
    """A response body read from its connection as the caller iterates; the connection goes back to the pool once the
    body is whole and the server keeps it alive, and is closed otherwise."""

    def __init__(
        self,
        transport: UpstreamTransport,
        conn: _Connection,
        parser: Any,
        answer: _Answer,
        request: httpx.Request,
        framed: bool,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._parser = parser
        self._answer = answer
        self._request = request
        self._framed = framed  # the answer says where its body ends (Content-Length or chunked)

    def __iter__(self) -> Iterator[bytes]:
        answer = self._answer
        while True:
            if answer.body:
                pieces, answer.body = answer.body, []
                yield b"".join(pieces) if len(pieces) > 1 else pieces[0]
            if answer.done or self._conn is None:
                break
            data = self._transport._recv(self._conn, self._request)
            if not data:
                if self._framed:
                    self.close()
                    raise httpx.RemoteProtocolError(
                        "The server closed the connection before the answer's body was complete.", request=self._request
                    )
                answer.done = True  # a body that runs to the connection's end
                self.close()
                break
            self._transport._feed(self._parser, data, self._request)
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._answer.done and self._framed and self._answer.keep_alive:
            self._transport._put_back(conn)
        else:
            conn.close()


class UpstreamTransport(httpx.BaseTransport):
    """HTTP/1.1 over kept-alive sockets (plain or TLS), shared by threads. See the module's docstring."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = MAX_IDLE,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._keepalive = keepalive_seconds
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_count = 0
        self._lock = threading.Lock()
        self._closed = False

    # --- the pool

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        stale: list[_Connection] = []
        found = None
        now = time.monotonic()
        with self._lock:
            conns = self._idle.get(key)
            while conns:
                conn = conns.pop()
                self._idle_count -= 1
                if now - conn.idle_since > self._keepalive:
                    stale.append(conn)
                    continue
                found = conn
                break
        for conn in stale:
            conn.close()
        if found is not None and _readable(found.sock):  # closed by the server while idle
            found.close()
            return self._take_idle(key)
        return found

    def _put_back(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and self._idle_count < self._max_idle:
                self._idle.setdefault(conn.key, []).append(conn)
                self._idle_count += 1
                return
        conn.close()

    def _connect(self, key: tuple[str, str, int], request: httpx.Request, timeout: float | None) -> _Connection:
        scheme, host, port = key
        try:
            sock = event_loop.connect(host, port, timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"Timed out connecting to {host}:{port}.", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"Could not connect to {host}:{port}: {exc}", request=request) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            try:
                sock = self._tls(sock, host, timeout)
            except TimeoutError as exc:
                sock.close()
                raise httpx.ConnectTimeout(
                    f"Timed out in the TLS handshake with {host}:{port}.", request=request
                ) from exc
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise httpx.ConnectError(f"TLS with {host}:{port} failed: {exc}", request=request) from exc
        return _Connection(key, sock)

    def _tls(self, sock: socket.socket, host: str, timeout: float | None) -> ssl.SSLSocket:
        if not event_loop.on_loop():
            return self._ssl().wrap_socket(sock, server_hostname=host)
        tls = self._ssl().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        try:
            while True:
                try:
                    tls.do_handshake()
                    return tls
                except ssl.SSLWantReadError:
                    event_loop.wait_readable(tls, timeout)
                except ssl.SSLWantWriteError:
                    event_loop.wait_writable(tls, timeout)
        except BaseException:
            tls.close()
            raise

    # --- one request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"The upstream transport speaks http and https, not {scheme!r}.")
        key = (scheme, url.host, url.port or DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout", {})
        conn = self._take_idle(key) or self._connect(key, request, timeouts.get("connect"))
        try:
            on_loop = event_loop.on_loop()
            conn.for_mode(on_loop)
            conn.read_timeout = timeouts.get("read")
            self._send(conn, request, timeouts.get("write"), on_loop)
            if not on_loop:
                conn.sock.settimeout(conn.read_timeout)
            answer = _Answer()
            parser = answer.parser = httptools.HttpResponseParser(answer)
            while not answer.headers_done:
                data = self._recv(conn, request)
                if not data:
                    raise httpx.RemoteProtocolError(
                        "The server closed the connection without answering.", request=request
                    )
                self._feed(parser, data, request)
            if request.method == "HEAD":
                answer.done, answer.body = True, []
        except BaseException:
            conn.close()
            raise
        framed = answer.done or any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in answer.headers
        )
        return httpx.Response(
            parser.get_status_code(),
            headers=answer.headers,
            stream=_Body(self, conn, parser, answer, request, framed),
            extensions={"http_version": b"HTTP/" + parser.get_http_version().encode(), "reason_phrase": answer.reason},
        )

    def _send(self, conn: _Connection, request: httpx.Request, timeout: float | None, on_loop: bool) -> None:
        head = [request.method.encode(), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        chunked = False
        for name, value in request.headers.raw:
            head += [name, b": ", value, b"\r\n"]
            if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
        head.append(b"\r\n")
        stream = request.stream
        body: list[bytes] = []
        for piece in stream:  # type: ignore[union-attr]
            if not chunked:
                body.append(piece)
            elif piece:
                body.append(b"%x\r\n%b\r\n" % (len(piece), piece))
        if chunked:
            body.append(b"0\r\n\r\n")
        data = b"".join(head) + b"".join(body)
        try:
            if on_loop:
                _send_on_loop(conn.sock, data, timeout)
            else:
                conn.sock.settimeout(timeout)
                conn.sock.sendall(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout("Timed out sending the request.", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(f"The connection broke while sending the request: {exc}", request=request) from exc

    def _recv(self, conn: _Connection, request: httpx.Request) -> bytes:
        sock = conn.sock
        try:
            if event_loop.on_loop():
                conn.for_mode(True)
                return _recv_on_loop(sock, conn.read_timeout)
            if sock.gettimeout() == 0.0:  # made non-blocking by a call on the loop
                sock.settimeout(conn.read_timeout)
            return sock.recv(READ_SIZE)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("Timed out waiting for the upstream's answer.", request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(f"The connection broke while reading the answer: {exc}", request=request) from exc

    @staticmethod
    def _feed(parser: Any, data: bytes, request: httpx.Request) -> None:
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:  # pragma: no cover - never asked for
            raise httpx.RemoteProtocolError("The server switched protocols unasked.", request=request) from exc
        except httptools.HttpParserError as exc:
            raise httpx.RemoteProtocolError(
                f"The server's answer is not valid HTTP/1.1: {exc}", request=request
            ) from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for group in self._idle.values() for c in group]
            self._idle.clear()
            self._idle_count = 0
        for conn in conns:
            conn.close()


def _recv_on_loop(sock: socket.socket, timeout: float | None) -> bytes:
    """What a non-blocking socket has to read, waiting on the event loop for it (TimeoutError after `timeout`)."""
    while True:
        try:
            return sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError):
            event_loop.wait_readable(sock, timeout)
        except ssl.SSLWantWriteError:
            event_loop.wait_writable(sock, timeout)


def _send_on_loop(sock: socket.socket, data: bytes, timeout: float | None) -> None:
    """All of `data` on a non-blocking socket, waiting on the event loop while the kernel cannot take more (TimeoutError
    after `timeout` without progress)."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, ssl.SSLWantWriteError):
            event_loop.wait_writable(sock, timeout)
        except ssl.SSLWantReadError:
            event_loop.wait_readable(sock, timeout)
