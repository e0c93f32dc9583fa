"""CPU and RSS of a server process that runs on this host, through psutil.

A pid from INFO or stats only means something on the same host (and outside containers), so
the process must also carry the expected name before we trust it.
"""

from __future__ import annotations

import functools
import ipaddress
import socket

import psutil

_processes: dict[int, psutil.Process] = {}


@functools.lru_cache(maxsize=256)
def is_local_host(host: str) -> bool:
    if host in ("localhost", "::1"):
        return True
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return False
    if address.is_loopback:
        return True
    local = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    return str(address) in local


def local_process_stats(host: str, pid: int | None, names: tuple[str, ...]) -> tuple[int, int] | None:
    """(cumulative CPU milliseconds, RSS bytes) of the server process, or None when not local."""
    if pid is None or pid <= 0 or not is_local_host(host):
        return None
    proc = _processes.get(pid)
    try:
        if proc is None:
            proc = psutil.Process(pid)
            name = proc.name().lower()
            if not any(n in name for n in names):
                return None
            _processes[pid] = proc
        with proc.oneshot():
            times = proc.cpu_times()
            rss = proc.memory_info().rss
    except (psutil.Error, OSError):
        _processes.pop(pid, None)
        return None
    return int((times.user + times.system) * 1000), int(rss)
