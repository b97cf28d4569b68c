"""WSGI entry point of the Rucio test peer (imported by gunicorn and by the TLS front end).

It serves the REAL Rucio Flask application (``rucio.web.rest.flaskapi.v1.main``), wrapped in a
thin middleware that does two test-only things and nothing else:

1. Token-cache flush.  Rucio caches every token validation in-process for up to 900 s
   (``rucio.core.authentication.TOKENREGION``, dogpile memory backend; the cached value holds
   the token's ``expired_at`` as it was when cached).  ``peer.py expire-tokens`` moves
   ``tokens.expired_at`` into the past in the DB and then rewrites ``RUN_DIR/flush-token-cache``;
   before each request the middleware compares that file's content with the last one it saw and,
   if it changed, hard-invalidates TOKENREGION in this process.  This is what a real server
   would do by itself once a token's real expiry time has passed (cached lifetime < now), so the
   next API call with the old token gets a 401 at once.

2. x509 DN for the TLS front end.  Rucio's ``/auth/x509`` reads the client DN only from the
   WSGI environ key ``SSL_CLIENT_S_DN``, which Apache mod_ssl sets.  Werkzeug's TLS server
   sets ``SSL_CLIENT_CERT`` (PEM of the *verified* leaf certificate) instead, so the middleware
   derives ``SSL_CLIENT_S_DN = subject.rfc4514_string()`` (``CN=...,O=...``, most specific
   first, like mod_ssl 2.4).  For an RFC 3820 proxy the leaf is the proxy, whose subject ends in
   ``CN=<digits>``; Rucio itself strips that leading ``CN=<digits>,``.

Environment: ``RUCIO_CONFIG`` (the run's rucio.cfg) must be set before this module is imported,
``SCIAUTH_RUCIO_PEER_DIR`` names the RUN_DIR.
"""

import os
import ssl
import sys

from rucio.web.rest.flaskapi.v1.main import application as rucio_application  # noqa: E402

FLUSH_FILE_NAME = "flush-token-cache"


class PeerMiddleware:
    def __init__(self, app, run_dir, tls=False):
        self.app = app
        self.flush_file = os.path.join(run_dir, FLUSH_FILE_NAME)
        self.tls = tls
        self.seen = self._read_generation()

    def _read_generation(self):
        try:
            with open(self.flush_file, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def _maybe_flush(self):
        gen = self._read_generation()
        if gen != self.seen:
            from rucio.core.authentication import TOKENREGION

            TOKENREGION.invalidate(hard=True)
            self.seen = gen
            print("peer: token validation cache flushed (generation %r)" % gen.decode(errors="replace").strip(),
                  file=sys.stderr, flush=True)

    def __call__(self, environ, start_response):
        self._maybe_flush()
        # Never trust a DN that did not come from our own TLS handshake.
        environ.pop("SSL_CLIENT_S_DN", None)
        environ.pop("SSL_CLIENT_I_DN", None)
        if self.tls:
            pem = environ.get("SSL_CLIENT_CERT")
            if pem:
                from cryptography import x509

                cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
                environ["SSL_CLIENT_S_DN"] = cert.subject.rfc4514_string()
                environ["SSL_CLIENT_I_DN"] = cert.issuer.rfc4514_string()
                environ["SSL_CLIENT_VERIFY"] = "SUCCESS"
        return self.app(environ, start_response)


RUN_DIR = os.environ.get("SCIAUTH_RUCIO_PEER_DIR") or os.path.dirname(os.environ["RUCIO_CONFIG"])

# gunicorn entry point (plain HTTP)
application = PeerMiddleware(rucio_application, RUN_DIR, tls=False)


def serve_tls(fd, certfile, keyfile, cafile):
    """Serve the same app over HTTPS on an already bound+listening socket ``fd``.

    Client certificates are requested but optional (like ``SSLVerifyClient optional``); when one
    is sent it must chain to ``cafile``; RFC 3820 proxy certificates are accepted
    (``OPENSSL_ALLOW_PROXY_CERTS=1`` in Apache terms).
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.load_verify_locations(cafile=cafile)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS

    class Handler(WSGIRequestHandler):
        # The TLS handshake runs here, in the connection's own thread and with a timeout, rather
        # than in accept() on the main thread (where one stuck client would block everybody).
        def setup(self):
            self.request.settimeout(60)
            self.request.do_handshake()
            super().setup()

    app = PeerMiddleware(rucio_application, RUN_DIR, tls=True)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler, fd=fd)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.ssl_context = ctx  # werkzeug then fills SSL_CLIENT_CERT and wsgi.url_scheme=https
    print("peer: TLS front end serving https://127.0.0.1:%d" % server.port, file=sys.stderr, flush=True)
    server.serve_forever()
