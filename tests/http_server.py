"""A loopback HTTP file server for the fetch tests: Range requests, scripted failures, counters.

    with FileServer(folder) as srv:          # serves folder/<name> on 127.0.0.1:<random port>
        srv.fail["FLIC.zip"] = [503, 503]    # the next two requests for FLIC.zip answer 503
        srv.cut["FLIC.zip"] = [1000]         # the next request sends 1000 bytes, then drops the connection
        download(srv.url("FLIC.zip"), ...)
        srv.requests                         # [(path, Range header or None, status), ...]

Only 127.0.0.1 is bound; nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        srv = self.server.owner
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        with srv.lock:
            fail = srv.fail.get(name, [])
            status = fail.pop(0) if fail else None
            cuts = srv.cut.get(name, [])
            cut = cuts.pop(0) if cuts else None
        if status is not None:
            srv.requests.append((name, rng, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = srv.root / name
        if not path.is_file():
            srv.requests.append((name, rng, 404))
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if rng and srv.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                srv.requests.append((name, rng, 416))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            srv.requests.append((name, rng, 206))
        else:
            self.send_response(200)
            srv.requests.append((name, rng, 200))
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if srv.ranges else "none")
        self.end_headers()
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True  # the client sees fewer bytes than Content-Length
            return
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: FileServer


class FileServer:
    """Serve the files of ``root`` on 127.0.0.1 from a background thread (context manager)."""

    def __init__(self, root: Path, ranges: bool = True):
        self.root = Path(root)
        self.ranges = ranges  # False: ignore Range headers (answer 200 with the whole file)
        self.fail: dict[str, list[int]] = {}
        self.cut: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
