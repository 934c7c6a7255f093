"""The webhook sender over TLS, against a real HTTPS server in the test: it connects to the
address it checked, yet verifies the certificate against the URL's host name."""

import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks import transport


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = f"host={self.headers['Host']}".encode()
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def https_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for `localhost`."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            "/usr/bin/openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def send(url: str) -> transport.Answer:
    return transport.post(url=url, body=b"{}", headers={}, timeout=2)


def test_a_trusted_certificate_for_the_urls_host_is_accepted(https_server, monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    port, cert = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the receiver's CA, trusted

    answer = send(f"https://localhost:{port}/hook")

    assert (answer.status, answer.excerpt) == (202, f"host=localhost:{port}")


def test_an_untrusted_certificate_or_another_host_name_is_refused(
    https_server, monkeypatch, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    port, cert = https_server

    with pytest.raises(transport.SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
        send(f"https://localhost:{port}/hook")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    # Trusted, but issued for `localhost`, not for the address the URL names.
    with pytest.raises(transport.SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
        send(f"https://127.0.0.1:{port}/hook")
