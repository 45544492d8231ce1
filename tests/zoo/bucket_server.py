"""A loopback HTTP server for download tests: range requests and scripted faults."""

from __future__ import annotations

import http.server
import threading
from typing import Any

LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in - Google Accounts</title></head></html>"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        server: BucketServer = self.server.owner  # type: ignore[attr-defined]
        server.requests.append((self.path, self.headers.get("Range")))
        faults = server.faults.get(self.path) or []
        fault = faults.pop(0) if faults else None
        if fault in ("403", "404", "401"):
            return self._reply(int(fault), b"<Error>denied or missing</Error>", "application/xml")
        if fault == "login":
            return self._reply(200, LOGIN_PAGE, "text/html; charset=utf-8")
        data = server.files.get(self.path)
        if data is None:
            return self._reply(404, b"<Error>NoSuchKey</Error>", "application/xml")
        start = 0
        if self.headers.get("Range") and server.ranges:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if fault and fault.startswith("cut:"):  # send part of the body, then drop the line
            self.wfile.write(body[: int(fault[4:])])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class BucketServer:
    """Serves `files` (`"/path" -> bytes`) on 127.0.0.1 like a storage bucket.

    `faults["/path"]` is a list consumed one per request: `"cut:N"` (send N bytes of the
    body, then close), `"403"`, `"404"`, `"login"` (an HTML sign-in page with status 200).
    `ranges=False` ignores `Range` headers (answers 200 with the whole file).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> BucketServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
