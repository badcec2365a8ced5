"""A local HTTP file server for download tests: byte ranges, dropped connections, no ranges.

It serves the files of a directory from ``127.0.0.1`` in a background thread, streaming them
from disk in chunks (a multi-GB file costs no memory), and can misbehave on purpose so that the
download path of :mod:`mmbench.sources` is tested against what real servers do: drop the
connection part-way through a body, ignore ``Range`` headers, or stall. Every request is
recorded (path, ``Range`` header, status).

Example:
    >>> with LocalFileServer(tmp_path) as server:
    ...     server.drop_after["big.bin"] = 1_000_000      # the first GET stops after 1 MB
    ...     path = fetch(Resource(name="x/big.bin", urls=(server.url("big.bin"),), ...),
    ...                  cache_dir=cache, allow_network=True)
    ...     server.requests                              # [("/big.bin", None, 200), ("/big.bin", "bytes=1000000-", 206)]
"""

from __future__ import annotations

import http.server
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["LocalFileServer"]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_CHUNK = 1 << 20


class LocalFileServer:
    """Serve ``root`` on ``http://127.0.0.1:<port>/`` until :meth:`close` (or the ``with`` exits).

    Attributes:
        drop_after: file name → byte count: the next GET of that file sends its headers (full
            length) and this many body bytes, then closes the connection (once; then removed).
        ignore_range: file names served whole (status 200) even when a ``Range`` is asked for.
        delay_s: file name → seconds to stall after the first body chunk (to overlap clients).
        requests: ``(path, range header or None, status)`` of every request, in order.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.drop_after: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.delay_s: dict[str, float] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="LocalFileServer", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, name: str) -> str:
        """The URL of file ``name`` (relative to ``root``)."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalFileServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _record(self, path: str, rng: str | None, status: int) -> None:
        with self._lock:
            self.requests.append((path, rng, status))

    def _take_drop(self, name: str) -> int | None:
        with self._lock:
            return self.drop_after.pop(name, None)


def _handler(server: LocalFileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            path = server.root / name
            rng = self.headers.get("Range")
            if not path.is_file():
                self._status(404, rng)
                return
            size = path.stat().st_size
            start, stop = 0, size
            if rng and name not in server.ignore_range:
                match = _RANGE.match(rng)
                if match is None or int(match.group(1)) >= size:
                    self._status(416, rng, extra={"Content-Range": f"bytes */{size}"})
                    return
                start = int(match.group(1))
                stop = min(int(match.group(2)) + 1, size) if match.group(2) else size
            status = 206 if start or stop < size else 200
            server._record(self.path, rng, status)
            self.send_response(status)
            self.send_header("Content-Length", str(stop - start))
            self.send_header("Accept-Ranges", "none" if name in server.ignore_range else "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            self.end_headers()
            self._body(path, name, start, stop)

        def _body(self, path: Path, name: str, start: int, stop: int) -> None:
            drop = server._take_drop(name)
            limit = stop if drop is None else min(stop, start + drop)
            with open(path, "rb") as f:
                f.seek(start)
                pos, first = start, True
                while pos < limit:
                    block = f.read(min(_CHUNK, limit - pos))
                    if not block:
                        break
                    self.wfile.write(block)
                    pos += len(block)
                    if first and name in server.delay_s:
                        self.wfile.flush()
                        time.sleep(server.delay_s[name])
                    first = False
            if drop is not None:
                self.wfile.flush()
                self.close_connection = True  # the client sees the body end early

        def _status(self, code: int, rng: str | None, extra: dict[str, str] | None = None) -> None:
            server._record(self.path, rng, code)
            self.send_response(code)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
