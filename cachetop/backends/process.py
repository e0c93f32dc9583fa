"""Resident memory of a server process that runs on this host, through psutil.

CPU comes from the servers themselves (Redis used_cpu_*, Memcached rusage_*: the same getrusage
numbers psutil would read), and Redis reports its RSS too; psutil fills the gap for Memcached.
Reading /proc costs more than a whole poll, so a value is reused for RSS_TTL seconds.
A pid from stats only means something on the same host (and outside containers), so the
process must also carry the expected name before we trust it.
"""

from __future__ import annotations

import functools
import ipaddress
import time

import psutil

RSS_TTL = 5.0
_processes: dict[int, psutil.Process] = {}
_rss_cache: dict[int, tuple[float, int]] = {}


@functools.lru_cache(maxsize=256)
def is_local_address(address: str) -> bool:
    """Whether an IP address (the connected peer's, so no DNS lookup here) is this host's."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    return any(a.address == str(ip) for addrs in psutil.net_if_addrs().values() for a in addrs)


def local_rss(peer_ip: str | None, pid: int | None, names: tuple[str, ...]) -> int | None:
    """RSS bytes of the server process, or None when it is not on this host."""
    if pid is None or pid <= 0 or not peer_ip or not is_local_address(peer_ip):
        return None
    now = time.monotonic()
    cached = _rss_cache.get(pid)
    if cached and now - cached[0] < RSS_TTL:
        return cached[1]
    proc = _processes.get(pid)
    try:
        if proc is None:
            proc = psutil.Process(pid)
            name = proc.name().lower()
            if not any(n in name for n in names):
                return None
            _processes[pid] = proc
        rss = int(proc.memory_info().rss)
    except (psutil.Error, OSError):
        _processes.pop(pid, None)
        return None
    _rss_cache[pid] = (now, rss)
    return rss
