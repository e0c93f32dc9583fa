"""A real `cachetop daemon` with /api/v1 on, for tests of attached viewers (issue 18).

    daemon = start_api_daemon(tmp_path, {"redis": redis.url, "mc": memcached.url})
    doc = daemon.get("/api/v1/snapshot")          # JSON, with the token
    daemon.kill(); daemon.restart()               # same port, same config
    daemon.stop()

The daemon is the console script of this checkout (a subprocess, as systemd runs it), on a free
loopback port; the API token and the action token are random per daemon (`daemon.token`,
`daemon.action_token`), and TLS is on when `tls=` gets a trustme.CA (then `daemon.ca_file`).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cachetop
from cachetop.servers import free_port

CACHETOP = Path(sys.executable).parent / "cachetop"
SOURCE = Path(cachetop.__file__).resolve().parents[1]


def end_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s; returns once it has ended."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class ApiDaemon:
    config: Path
    port: int
    token: str
    action_token: str | None
    stderr: Path
    extra_args: list[str] = field(default_factory=list)
    ca_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ApiDaemon:
        argv = [str(CACHETOP), "daemon", "-c", str(self.config), "--metrics-port", str(self.port),
                "--metrics-addr", "127.0.0.1", *self.extra_args]  # fmt: skip
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": str(SOURCE)}
            )
        if wait:
            self.wait_snapshot()
        return self

    def _context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None

    def request(
        self, path: str, *, token: str | None = "", method: str = "GET", body: Any = None,
        headers: dict[str, str] | None = None, timeout: float = 5.0,
    ) -> tuple[int, Any]:  # fmt: skip
        """(status, parsed JSON or raw bytes); token "" = the daemon's, None = no header."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token or self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._context()) as resp:
                status, raw, kind = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        return status, json.loads(raw) if "json" in kind else raw

    def get(self, path: str) -> Any:
        status, doc = self.request(path)
        assert status == 200, (status, doc)
        return doc

    def wait_snapshot(self, deadline_s: float = 20.0, what: Any = None) -> dict[str, Any]:
        """The first snapshot (for which `what(doc)` holds) the API serves."""
        end = time.monotonic() + deadline_s
        last: Any = None
        while time.monotonic() < end:
            assert self.proc is not None and self.proc.poll() is None, self.stderr.read_text()[-2000:]
            try:
                status, last = self.request("/api/v1/snapshot", timeout=2)
            except OSError:
                status = 0
            if status == 200 and (what is None or what(last)):
                return dict(last)
            time.sleep(0.05)
        raise AssertionError(f"no snapshot from the daemon's API in {deadline_s}s: {last!r}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        end_process(self.proc)

    def restart(self, wait: bool = True) -> ApiDaemon:
        self.kill()
        return self.start(wait)


def start_api_daemon(
    tmp_path: Path,
    instances: dict[str, str],
    *,
    interval: str = "500ms",
    window: str = "2s",
    actions: bool = True,
    tls: Any = None,  # a trustme.CA: serve https with a certificate it issues for 127.0.0.1
    extra_toml: str = "",
    extra_args: list[str] | None = None,
    start: bool = True,
) -> ApiDaemon:
    token = secrets.token_hex(16)
    action_token = secrets.token_hex(16) if actions else None
    lines = [
        "[settings]",
        f'interval = "{interval}"',
        f'window = "{window}"',
        f'state_dir = "{tmp_path / "daemon-state"}"',
        f'api_token = "{token}"',
    ]
    if action_token:
        lines.append(f'action_token = "{action_token}"')
    ca_file = None
    if tls is not None:
        cert = tls.issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "api.pem"))
        ca_file = tmp_path / "ca.pem"
        tls.cert_pem.write_to_path(str(ca_file))
        lines += [f'api_tls_cert = "{tmp_path / "api.pem"}"', f'api_tls_key = "{tmp_path / "api.pem"}"']
    lines += ["", "[alerts]", "instance_down = false"]
    for name, url in instances.items():
        lines += ["", "[[instance]]", f'name = "{name}"', f'url = "{url}"']
    config = tmp_path / "daemon.toml"
    config.write_text("\n".join(lines) + "\n" + extra_toml)
    config.chmod(0o600)
    daemon = ApiDaemon(
        config, free_port(), token, action_token, tmp_path / "daemon.err", list(extra_args or ()), ca_file
    )
    return daemon.start() if start else daemon
