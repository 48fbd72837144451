"""A small threaded HTTP server on 127.0.0.1 (port 0) for fake remote APIs in tests.

Subclasses route requests; tests can script failures ("the next 2 PUTs to /v1/me/player/play
answer 404") and read back every request received, with its arrival time.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    t: float            # time.perf_counter() on arrival
    method: str
    path: str
    query: dict         # first value of each parameter
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: object = None              # dict -> JSON; bytes as is; None -> empty
    headers: dict = field(default_factory=dict)
    delay: float = 0.0               # seconds to wait before answering (timeouts)


@dataclass
class _Scripted:
    method: str
    path: re.Pattern
    reply: Reply
    times: int


class FakeServer:
    def __init__(self):
        self.requests: list[Request] = []
        self._scripted: list[_Scripted] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # one segment per response, no Nagle: else delayed ACKs add ~40 ms to every local call
            wbufsize = -1
            disable_nagle_algorithm = True

            def _any(self):
                fake._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # --- test controls ----------------------------------------------------------------------
    def script(self, method: str, path: str, reply: Reply, times: int = 1) -> None:
        """The next `times` requests matching method and path (a regex, fully matched) get `reply`."""
        with self.lock:
            self._scripted.append(_Scripted(method, re.compile(path), reply, times))

    def hits(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (path is None or re.fullmatch(path, r.path))]

    # --- serving ------------------------------------------------------------------------------
    def route(self, req: Request) -> Reply:  # subclasses
        raise NotImplementedError

    def scripted(self, req: Request) -> Reply | None:
        """A scripted reply for `req`, if one is due; subclasses call this where the real API
        would fail (after authentication)."""
        with self.lock:
            for s in self._scripted:
                if s.method == req.method and s.path.fullmatch(req.path) and s.times > 0:
                    s.times -= 1
                    return s.reply
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        req = Request(time.perf_counter(), handler.command, parts.path,
                      {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                      {k.lower(): v for k, v in handler.headers.items()}, handler.rfile.read(length))
        with self.lock:
            self.requests.append(req)
        reply = self.route(req)
        if reply.delay:
            time.sleep(reply.delay)
        if isinstance(reply.body, bytes):
            body = reply.body
        else:
            body = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            if body:
                handler.send_header("Content-Type", "application/json; charset=utf-8")
            for k, v in reply.headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)
