"""A private, offline IPFS node (js-ipfs from the npm package ``ipfs``) for tests and demos.

The node is isolated: its repository (``IPFS_PATH``) lives in a temporary directory, it listens
only on an HTTP RPC port on 127.0.0.1, and it never dials out:

* ``jsipfs daemon --offline`` (no libp2p networking at all), with ``--enable-preload false``;
* config: ``Addresses.Swarm = []``, ``Bootstrap = []``, ``Addresses.Delegates = []``,
  ``Addresses.Gateway = []``, no gRPC endpoint, ``Discovery.MDNS`` and ``webRTCStar`` off,
  ``Routing.Type = "none"``, ``Pubsub`` off, ``Swarm.DisableNatPortMap = true`` (no UPnP);
* ``NO_UPDATE_NOTIFIER=1`` so the CLI does not ask the npm registry for a newer version.

js-ipfs 0.66 needs ``"overrides": {"mortice": "3.1.0"}`` in package.json on Node 20 (newer
mortice uses ``Promise.withResolvers``). Its RPC API is Kubo-compatible for what FedCoin uses
(``add``, ``cat``, ``version``), so :class:`fedcoin.content.store.IPFSStore` talks to it unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fedcoin.dev.devnet import free_port, http_ok, terminate, wait_ready


def jsipfs_path() -> str:
    """The ``jsipfs`` launcher from ``node_modules/.bin`` (or PATH)."""
    repo = Path(__file__).resolve().parents[2]
    local = repo / "node_modules" / ".bin" / "jsipfs"
    if local.exists():
        return str(local)
    found = shutil.which("jsipfs")
    if not found:
        raise FileNotFoundError("jsipfs not found: run `npm ci` (package.json pins ipfs 0.66.1)")
    return found


def offline_config(config: dict, api_port: int) -> dict:
    """Rewrite a js-ipfs config so the node can only be reached on, and only talks to, loopback."""
    config = json.loads(json.dumps(config))
    addrs = config.setdefault("Addresses", {})
    addrs["Swarm"] = []
    addrs["Announce"] = []
    addrs["Delegates"] = []
    addrs["Gateway"] = []
    addrs.pop("RPC", None)
    addrs["API"] = f"/ip4/127.0.0.1/tcp/{api_port}"
    config["Bootstrap"] = []
    disc = config.setdefault("Discovery", {})
    disc["MDNS"] = {"Enabled": False, "Interval": 10}
    disc["webRTCStar"] = {"Enabled": False}
    config["Routing"] = {"Type": "none"}
    config["Pubsub"] = {"Enabled": False, "Router": "gossipsub"}
    config.setdefault("Swarm", {})["DisableNatPortMap"] = True
    return config


def _api_ready(url: str) -> bool:
    return http_ok(urllib.request.Request(url + "/api/v0/version", data=b"", method="POST"))


@dataclass
class JsIpfsNode:
    """An offline js-ipfs daemon; use as a context manager or call :meth:`stop`.

    Attributes:
        url: the RPC URL (``http://127.0.0.1:<port>``) for :class:`fedcoin.content.store.IPFSStore`.
        pid: the daemon's process id (to inspect its sockets).
    """

    port: int = 0
    repo: Path | None = None
    proc: subprocess.Popen | None = None
    _tmp: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _env(self) -> dict:
        env = dict(os.environ)
        env.update(
            IPFS_PATH=str(self.repo),
            NO_UPDATE_NOTIFIER="1",
            XDG_CONFIG_HOME=str(self.repo.parent / "xdg"),
            IPFS_MONITORING="",
        )
        return env

    def start(self, timeout: float = 60.0) -> "JsIpfsNode":
        self._tmp = tempfile.TemporaryDirectory(prefix="fedcoin-ipfs-")
        self.repo = Path(self._tmp.name) / "repo"
        self.port = self.port or free_port()
        exe = jsipfs_path()
        subprocess.run(
            [exe, "init", "--emptyRepo"], env=self._env(), check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
        )
        cfg_path = self.repo / "config"
        cfg_path.write_text(json.dumps(offline_config(json.loads(cfg_path.read_text()), self.port), indent=2))
        self.proc = subprocess.Popen(
            [exe, "daemon", "--offline", "--enable-preload", "false"],
            env=self._env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            wait_ready(self.proc, lambda: _api_ready(self.url), name="jsipfs daemon", url=self.url,
                       timeout=timeout, poll=0.2)
        except (RuntimeError, TimeoutError):
            self._cleanup()
            raise
        return self

    def stop(self) -> None:
        terminate(self.proc, grace=15)
        self.proc = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "JsIpfsNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
