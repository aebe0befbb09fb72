"""A local Anvil chain on a free loopback port, for the demo, the tests and the benchmarks.

Anvil listens on 127.0.0.1 only. Its default accounts are derived from Anvil's well-known
test mnemonic; they are development keys and must never hold real value.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
import json
from dataclasses import dataclass, field

from fedcoin.dev.toolchain import anvil_path

#: Anvil's public development mnemonic (printed by every Anvil on start; not a secret).

#: EIP-7825's per-transaction gas cap, enforced with ``--enable-tx-gas-limit``.
from fedcoin.chain.keys import ANVIL_MNEMONIC, dev_private_keys  # noqa: F401 - the node and its keys


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, ready, *, name: str, url: str, timeout: float, poll: float = 0.05) -> None:
    """Wait until ``ready()`` is true for a child process that serves ``url``.

    Raises:
        RuntimeError: the process exited first (its stderr tail is in the message).
        TimeoutError: it did not answer within ``timeout`` seconds (the process is stopped).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{name} exited with code {proc.returncode}: {err.strip()[-2000:]}")
        if ready():
            return
        time.sleep(poll)
    terminate(proc)
    raise TimeoutError(f"{name} did not answer on {url} within {timeout:.0f}s")


def terminate(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; a no-op for a finished process."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_ok(req: urllib.request.Request, timeout: float = 1.0) -> bool:
    """True when ``req`` gets an HTTP 200 answer (a readiness probe)."""
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _rpc_ready(url: str) -> bool:
    return http_ok(urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode(),
        headers={"Content-Type": "application/json"},
    ))


@dataclass
class Anvil:
    """A running Anvil process; use as a context manager or call :meth:`stop`.

    Args:
        accounts: number of funded dev accounts.
        balance_eth: ether per account.
        tx_gas_cap: enforce EIP-7825's per-transaction gas cap (``--enable-tx-gas-limit``).
        block_gas_limit: block gas limit (Anvil's default when None).
        extra_args: further Anvil flags.
    """

    accounts: int = 30
    balance_eth: int = 10_000
    tx_gas_cap: bool = True
    block_gas_limit: int | None = None
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Anvil":
        self.port = self.port or free_port()
        cmd = [
            anvil_path(), "--host", "127.0.0.1", "--port", str(self.port),
            "--accounts", str(self.accounts), "--balance", str(self.balance_eth),
            "--mnemonic", ANVIL_MNEMONIC, "--silent",
        ]
        if self.tx_gas_cap:
            cmd.append("--enable-tx-gas-limit")
        if self.block_gas_limit:
            cmd += ["--gas-limit", str(self.block_gas_limit)]
        cmd += self.extra_args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_ready(self.proc, lambda: _rpc_ready(self.url), name="anvil", url=self.url, timeout=timeout)
        return self

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
