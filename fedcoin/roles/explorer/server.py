"""``fedcoin explorer``: a local web page of tasks, rounds, miners, blocks and payouts.

Serves on 127.0.0.1 only (``--port 0``: any free port) and prints the URL. The server is the
standard library's :class:`http.server.ThreadingHTTPServer`; the page is static HTML and
JavaScript shipped in the package with its libraries vendored (Chart.js for the charts, js-sha3
for keccak256), so the browser fetches nothing from outside loopback.

A background thread keeps the event index (:mod:`fedcoin.roles.index`) in step with the chain
every ``--poll`` seconds; the page polls ``/api/summary`` and redraws when the index head moves,
so it updates live while a round runs.

JSON API (all GET): ``/api/summary``, ``/api/tasks``, ``/api/task/<id>``, ``/api/chain``,
``/api/balances``, ``/api/spec/<task>/<round>`` (the round's spec from the content store,
checked against its on-chain hash).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from fedcoin.roles.explorer import model
from fedcoin.roles.index import EventIndex

HOST = "127.0.0.1"
STATIC = resources.files("fedcoin.roles.explorer") / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}


class Explorer:
    """The explorer's state: the contract, its index, a lock around both, and the syncer thread."""

    def __init__(self, fc, idx: EventIndex, rpc_url: str, *, poll: float = 1.0, store_url: str | None = None):
        self.fc, self.idx, self.rpc_url, self.poll = fc, idx, rpc_url, poll
        self.store_url = store_url
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._sync_loop, name="explorer-sync", daemon=True)

    def _sync_loop(self) -> None:
        while not self.stop.is_set():
            try:
                with self.lock:
                    self.idx.sync()
                self.last_error = None
            except Exception as e:  # keep serving what is indexed; the page shows the error
                self.last_error = f"{type(e).__name__}: {e}"
            self.stop.wait(self.poll)

    def api(self, path: str) -> object | None:
        parts = [p for p in path.split("/") if p][1:]  # drop "api"
        with self.lock:
            if parts == ["summary"]:
                return model.summary(self.idx, self.fc) | {"sync_error": self.last_error}
            if parts == ["tasks"]:
                return model.task_list(self.idx, self.fc)
            if len(parts) == 2 and parts[0] == "task" and parts[1].isdigit():
                return model.task_view(self.idx, self.fc, int(parts[1]))
            if parts == ["chain"]:
                return model.chain_view(self.idx, self.fc)
            if parts == ["balances"]:
                return model.balances(self.idx, self.fc, self.rpc_url)
            if len(parts) == 3 and parts[0] == "spec" and parts[1].isdigit() and parts[2].isdigit():
                return self.spec(int(parts[1]), int(parts[2]))
        return None

    def spec(self, tid: int, rnd: int) -> dict:
        """The round's published spec, fetched from the content store and checked against its hash."""
        pubs = self.idx.rows("ShapleyTaskPublished", task_id=tid, round=rnd)
        if not pubs:
            return {"available": False, "reason": "not published"}
        a = pubs[-1]["args"]
        try:
            from fedcoin.content.store import open_store

            with open_store(self.store_url) as store:
                data = store.get(a["specLocator"], a["specHash"])
            return {"available": True, "verified": True, "spec": json.loads(data)}
        except Exception as e:  # not in this machine's store, or its bytes do not match the hash
            return {"available": False, "reason": f"{type(e).__name__}: {e}"}


def _handler(ex: Explorer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "fedcoin-explorer"

        def log_message(self, fmt, *args):  # quiet: the terminal shows only the URL and errors
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            # Nothing but this origin: no page can load a script or connect anywhere else.
            self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's name)
            path = urlparse(self.path).path
            try:
                if path.startswith("/api/"):
                    out = ex.api(path)
                    if out is None:
                        return self._send(404, b'{"error": "not found"}', "application/json")
                    return self._send(200, json.dumps(model.jsonable(out)).encode(), "application/json")
                name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
                f = STATIC.joinpath(*name.split("/"))
                if ".." in name.split("/") or not f.is_file():
                    return self._send(404, b"not found", "text/plain")
                return self._send(200, f.read_bytes(), _TYPES.get(Path(name).suffix, "application/octet-stream"))
            except Exception as e:
                traceback.print_exc()
                return self._send(500, json.dumps({"error": f"{type(e).__name__}: {e}"}).encode(), "application/json")

    return Handler


def serve(ex: Explorer, port: int = 0) -> ThreadingHTTPServer:
    """Start serving ``ex`` on 127.0.0.1:``port`` in a thread (after one sync); returns the server."""
    with ex.lock:
        ex.idx.sync()
    httpd = ThreadingHTTPServer((HOST, port), _handler(ex))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="explorer-http", daemon=True).start()
    ex.thread.start()
    return httpd


def url_of(httpd: ThreadingHTTPServer) -> str:
    host, port = httpd.server_address[:2]
    return f"http://{host}:{port}/"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment)")
    parser.add_argument("--db", type=Path, default=None,
                        help="event index file (default: $FEDCOIN_HOME/index/<chainId>-<address>.sqlite)")
    parser.add_argument("--port", type=int, default=8600, help="port on 127.0.0.1 (0: any free one; default %(default)s)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between index syncs (default %(default)s)")
    parser.add_argument("--store", default=None,
                        help="content store for specs: local[:DIR] or ipfs:http://127.0.0.1:5001 (default: local)")


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import RPCUnavailable, open_fedcoin
    from fedcoin.roles.index import IndexFileError

    if not 0 <= args.port <= 65535:
        print(f"fedcoin explorer: --port {args.port} is not a port", file=sys.stderr)
        return 2
    try:
        fc = open_fedcoin(args.rpc, args.contract)
        idx = EventIndex.for_fedcoin(fc, args.db)
        ex = Explorer(fc, idx, args.rpc, poll=args.poll, store_url=args.store)
        httpd = serve(ex, args.port)
    except (RPCUnavailable, LookupError, ValueError, IndexFileError, OSError) as e:
        print(f"fedcoin explorer: {e}", file=sys.stderr)
        return 2
    print(f"explorer: {url_of(httpd)}  (index {idx.path}; Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 130
    finally:
        ex.stop.set()
        httpd.shutdown()
