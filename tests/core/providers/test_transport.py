"""The upstream transport (core/providers/transport.py) against a real socket server whose every byte the test writes:
kept-alive reuse, streamed bodies, connections the server closes, broken or malformed answers, timeouts, chunked
uploads, TLS, and the errors httpx's own transport raises for each (the providers' retries rely on their types).
Each test runs twice (conftest.py): its calls blocking, and as one call on an event loop, as the gateway runs them."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core import event_loop
from core.config import Settings
from core.providers.registry import AIProviderFactory, upstream_client
from core.providers.transport import UpstreamTransport

Handler = Callable[[socket.socket, int], None]


@pytest.fixture(autouse=True, params=["blocking", "on the event loop"])
def where(request: pytest.FixtureRequest) -> str:
    """How the test's calls wait (see conftest.py); the test body checks it is where it should be."""
    return request.param


def test_each_test_runs_where_its_fixture_says(where: str) -> None:
    assert event_loop.on_loop() == (where == "on the event loop")


def read_request(sock: socket.socket) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length or chunked), read off `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return b"", b""
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    if b"content-length" in headers:
        size = int(headers[b"content-length"])
        while len(rest) < size:
            rest += sock.recv(65536)
        return head, rest
    if headers.get(b"transfer-encoding") == b"chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
        body, pos = b"", 0
        while True:
            end = rest.index(b"\r\n", pos)
            size = int(rest[pos:end], 16)
            if size == 0:
                return head, body
            body += rest[end + 2 : end + 2 + size]
            pos = end + 2 + size + 2
    return head, rest


def answer(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Server:
    """A loopback server: each accepted connection runs `handler(sock, index)` in its own thread."""

    def __init__(self, handler: Handler, wrap: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.wrap = wrap
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            index, self.connections = self.connections, self.connections + 1
            threading.Thread(target=self._serve, args=(sock, index), daemon=True).start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        try:
            if self.wrap is not None:
                try:
                    sock = self.wrap.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            self.handler(sock, index)
        finally:
            sock.close()

    def serve_requests(self, reply: Callable[[bytes, bytes], bytes]) -> Handler:
        """A handler answering every request of a connection with `reply(head, body)`, keeping it alive."""

        def handle(sock: socket.socket, _index: int) -> None:
            while True:
                head, body = read_request(sock)
                if not head:
                    return
                self.requests.append((head, body))
                sock.sendall(reply(head, body))

        return handle

    def close(self) -> None:
        self.listener.close()


@contextmanager
def server(handler: Handler | None = None, **kwargs: object) -> Iterator[Server]:
    s = Server(handler or (lambda _sock, _i: None), **kwargs)  # type: ignore[arg-type]
    try:
        yield s
    finally:
        s.close()


def client(**kwargs: object) -> httpx.Client:
    return httpx.Client(transport=UpstreamTransport(**kwargs), timeout=5.0)  # type: ignore[arg-type]


def ok_json(_head: bytes, body: bytes) -> bytes:
    return answer(
        "200 OK", json.dumps({"echo": json.loads(body or b"null")}).encode(), "content-type: application/json"
    )


def test_json_calls_reuse_one_kept_alive_connection() -> None:
    with server() as s, client() as http:
        s.handler = s.serve_requests(ok_json)
        for n in range(5):
            reply = http.post(f"http://127.0.0.1:{s.port}/v1/chat?x=1", json={"n": n}, headers={"Authorization": "k"})
            assert reply.status_code == 200
            assert reply.json() == {"echo": {"n": n}}
            assert reply.http_version == "HTTP/1.1" and reply.reason_phrase == "OK"
        assert s.connections == 1
        head = s.requests[0][0]
        assert head.startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\n")
        assert b"\r\nauthorization: k" in head.lower() and f"host: 127.0.0.1:{s.port}".encode() in head.lower()


def test_a_streamed_body_arrives_piece_by_piece() -> None:
    release = threading.Event()

    def handle(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
        sock.sendall(b"7\r\ndata: 1\r\n")
        release.wait(5)  # the second piece only once the client has read the first
        sock.sendall(b"7\r\ndata: 2\r\n0\r\n\r\n")
        read_request(sock)  # the connection is reused for the next request
        sock.sendall(answer("200 OK", b"again"))

    with server(handle) as s, client() as http:
        with http.stream("POST", f"http://127.0.0.1:{s.port}/s", json={}) as reply:
            pieces = reply.iter_raw()
            assert next(pieces) == b"data: 1"
            release.set()
            assert b"".join(pieces) == b"data: 2"
        assert http.get(f"http://127.0.0.1:{s.port}/again").text == "again"
        assert s.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(answer("200 OK", f"conn {index}".encode()))
        # then close the kept-alive connection, as servers do after their idle timeout

    with server(handle) as s, client() as http:
        assert http.get(f"http://127.0.0.1:{s.port}/").text == "conn 0"
        threading.Event().wait(0.2)
        assert http.get(f"http://127.0.0.1:{s.port}/").text == "conn 1"
        assert s.connections == 2


def test_connection_close_and_http_1_0_answers_are_not_kept() -> None:
    replies = iter(
        [
            answer("200 OK", b"a", "connection: close"),
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb",
            answer("200 OK", b"c"),
        ]
    )

    def handle(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(next(replies))
        sock.settimeout(1)
        try:  # the server leaves the socket open: a client that wrongly reuses it is answered "reused"
            if read_request(sock)[0]:
                sock.sendall(answer("200 OK", b"reused"))
        except OSError:
            return

    with server(handle) as s, client() as http:
        assert [http.get(f"http://127.0.0.1:{s.port}/").text for _ in range(3)] == ["a", "b", "c"]
        assert s.connections == 3


def test_a_body_without_length_runs_to_the_connections_end() -> None:
    def handle(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of ")
        sock.sendall(b"it")

    with server(handle) as s, client() as http:
        assert http.get(f"http://127.0.0.1:{s.port}/").text == "all of it"


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..",  # cut short
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",  # no last chunk
    ],
)
def test_a_body_cut_short_is_a_remote_protocol_error(sent: bytes) -> None:
    def handle(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(sent)

    with server(handle) as s, client() as http, pytest.raises(httpx.RemoteProtocolError, match="before the answer"):
        http.get(f"http://127.0.0.1:{s.port}/")


@pytest.mark.parametrize(
    ("sent", "match"),
    [(b"", "without answering"), (b"NONSENSE\r\n\r\n", "not valid HTTP"), (b"HTTP/1.1 200 OK\r\ncontent-l", "without")],
)
def test_no_answer_or_a_malformed_one_is_a_remote_protocol_error(sent: bytes, match: str) -> None:
    def handle(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(sent)

    with server(handle) as s, client() as http, pytest.raises(httpx.RemoteProtocolError, match=match):
        http.get(f"http://127.0.0.1:{s.port}/")


def test_timeouts_and_refusals_raise_httpxs_own_errors() -> None:
    def silent(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        threading.Event().wait(2)

    with server(silent) as s, client() as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get(f"http://127.0.0.1:{s.port}/", timeout=httpx.Timeout(5.0, read=0.2))
        with pytest.raises(httpx.ReadTimeout):  # a stream that stalls mid-body too
            http.get(f"http://127.0.0.1:{s.port}/", timeout=0.2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]  # bound, not listening: refused
        with client() as http, pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{port}/")
    with client() as http, pytest.raises(httpx.UnsupportedProtocol):
        http.get("ftp://127.0.0.1/")


def test_a_stalled_body_times_out_as_a_read() -> None:
    def handle(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        threading.Event().wait(2)

    with server(handle) as s, client() as http, http.stream("GET", f"http://127.0.0.1:{s.port}/", timeout=0.3) as reply:
        assert reply.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            reply.read()


def test_a_response_closed_before_its_end_closes_its_connection() -> None:
    def handle(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        threading.Event().wait(0.5)
        try:
            sock.sendall(b"6\r\nsecond\r\n0\r\n\r\n")
            read_request(sock)
            sock.sendall(answer("200 OK", f"reused {index}".encode()))
        except OSError:
            return

    with server(handle) as s, client() as http:
        with http.stream("GET", f"http://127.0.0.1:{s.port}/") as reply:
            assert next(reply.iter_raw()) == b"first"  # then the caller hangs up
        with http.stream("GET", f"http://127.0.0.1:{s.port}/") as reply:
            assert next(reply.iter_raw()) == b"first"
        assert s.connections == 2  # the half-read answer's connection was not handed to the next request


def test_uploads_of_unknown_length_go_out_chunked_and_known_ones_with_their_length() -> None:
    with server() as s, client() as http:
        s.handler = s.serve_requests(lambda _h, body: answer("200 OK", body))

        def pieces() -> Iterator[bytes]:
            yield b"one,"
            yield b""
            yield b"two"

        assert http.post(f"http://127.0.0.1:{s.port}/", content=pieces()).content == b"one,two"
        assert b"transfer-encoding: chunked" in s.requests[-1][0].lower()
        multipart = http.post(f"http://127.0.0.1:{s.port}/", files={"file": ("a.wav", b"RIFF" * 1000)}, data={"m": "w"})
        assert b"RIFF" * 1000 in multipart.content and b'name="m"' in multipart.content
        assert b"content-length" in s.requests[-1][0].lower()


def test_head_answers_have_no_body_and_encoded_bodies_are_decoded() -> None:
    def reply(head: bytes, _body: bytes) -> bytes:
        if head.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"
        return answer("200 OK", gzip.compress(b"unzipped"), "content-encoding: gzip")

    with server() as s, client() as http:
        s.handler = s.serve_requests(reply)
        assert http.head(f"http://127.0.0.1:{s.port}/").content == b""
        assert http.get(f"http://127.0.0.1:{s.port}/").text == "unzipped"
        assert s.connections == 1


def test_threads_share_the_pool_without_mixing_answers() -> None:
    with server() as s, client() as http:
        s.handler = s.serve_requests(ok_json)
        results: list[bool] = []

        def call(n: int) -> None:
            for i in range(20):
                results.append(http.post(f"http://127.0.0.1:{s.port}/", json=[n, i]).json() == {"echo": [n, i]})

        threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 160 and s.connections <= 8


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_is_verified_against_the_trusted_certificates(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    with server(wrap=served) as s:
        s.handler = s.serve_requests(ok_json)
        trusting = ssl.create_default_context(cafile=str(cert))
        with client(ssl_context=trusting) as http:
            for n in range(3):
                assert http.post(f"https://localhost:{s.port}/", json=n).json() == {"echo": n}
        assert s.connections == 1
        with client() as http, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http.get(f"https://localhost:{s.port}/")  # the default context does not trust a self-signed certificate


def test_the_providers_shared_client_uses_it_unless_a_proxy_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(AIProviderFactory(Settings()).client._transport, UpstreamTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    with AIProviderFactory(Settings()).client as proxied:  # httpx's own transport, which applies the proxy
        assert not isinstance(proxied._transport, UpstreamTransport)
        assert any(pattern.scheme == "https" for pattern in proxied._mounts)


def test_the_providers_client_keeps_no_cookie_from_one_call_for_the_next() -> None:
    with server() as s, upstream_client() as http:
        s.handler = s.serve_requests(lambda _h, _b: answer("200 OK", b"{}", "set-cookie: __cf_bm=abc; Path=/"))
        for _ in range(2):
            http.post(f"http://127.0.0.1:{s.port}/v1/chat/completions", json={})
        assert b"cookie" not in s.requests[1][0].lower()
        assert not http.cookies
        with pytest.raises(ValueError, match="no cookies"):
            http.cookies = {"a": "b"}
