"""The daemon's /api/v1: what it sees, for attached dashboards (sources/attach.py), beside /metrics.

    GET  /api/v1/snapshot            the latest snapshot (exporters/api_json.py: `snapshot --json` + more)
    GET  /api/v1/stream[?since=T]    server-sent events: one `snapshot` event per snapshot, the same
                                     document; first the kept ones newer than T (a viewer catching up)
    GET  /api/v1/hotkeys             per instance, the `cachetop hotkeys --json` document
    GET  /api/v1/alerts              the alerts panel's view (null without alerts)
    GET  /api/v1/recording           the daemon's --record file, to replay (404 without one)
    POST /api/v1/actions/evict       exporters/api_actions.py (needs the action token too)

Every request needs `Authorization: Bearer <[settings] api_token>`, compared in constant time;
without it, or with another, the answer is 401 and a JSON {"error": ...} and nothing else.

It runs in the exporter's thread and loop (exporters/prometheus.py), never on the Monitor's:
on_snapshot (the Monitor's loop) takes the alert states and hands the Snapshot over; the
exporter's thread builds its document once, as bytes, for every viewer. Each stream has a queue
of at most QUEUE_FRAMES, so a slow viewer loses its oldest frames (the event ids show the gap)
and never grows the daemon's memory or holds it up. Nobody attached for KEEP_BUILDING_S: no
document is built at all.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetop.exporters.api_json import snapshot_document
from cachetop.model import Snapshot

log = logging.getLogger("cachetop.api")

PREFIX = "/api/v1/"
QUEUE_FRAMES = 8  # per viewer; a viewer further behind loses its oldest frames
RING_FRAMES = 600  # kept for viewers catching up (?since=); 10 minutes at 1 s
RING_BYTES = 64 * 1024 * 1024  # ...and at most this much of them (a large fleet's frames are MBs)
KEEPALIVE_S = 15.0
KEEP_BUILDING_S = RING_FRAMES * 1.0  # after the last request (see ApiServer.wanted_until)
WRITE_TIMEOUT_S = 30.0  # a viewer that takes nothing this long is dropped
MAX_STREAMS = 256
MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_S = 10.0
CHUNK = 1 << 20  # recording download, per write


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    peer: str = ""


@dataclass(eq=False)
class _Viewer:
    frames: collections.deque[bytes] = field(default_factory=lambda: collections.deque(maxlen=QUEUE_FRAMES))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0


ActionHandler = Callable[[str, dict[str, Any], Request], Any]  # -> awaitable (status, document)


class ApiServer:
    """Answers /api/v1/* for PrometheusExporter; `token` is [settings] api_token."""

    def __init__(
        self,
        token: str,
        *,
        alerts: Any = None,
        interval: Callable[[], float] = lambda: 1.0,
        actions: Any = None,  # exporters/api_actions.ApiActions, or None: actions are off
        recording: str | None = None,
    ) -> None:
        self._token = token.encode()
        self.alerts = alerts
        self.interval = interval
        self.actions = actions
        self.recording = Path(recording) if recording else None
        self.loop: asyncio.AbstractEventLoop | None = None  # the exporter's, set by it
        self.seq = 0
        self.latest: bytes | None = None
        self.latest_seq = 0
        self.latest_doc: dict[str, Any] | None = None
        self.ring: collections.deque[tuple[float, bytes]] = collections.deque(maxlen=RING_FRAMES)
        self.ring_bytes = 0
        self.viewers: set[_Viewer] = set()
        self.started = time.time()
        self._rules_json: list[dict[str, Any]] | None = None
        self._views: dict[str, tuple[Any, Any]] = {}  # per instance: the hot-key view last encoded
        # Documents are built while someone is attached, and KEEP_BUILDING_S after the last
        # request (so a viewer that comes back catches up): a daemon nobody watches pays nothing.
        self.wanted_until = 0.0  # time.monotonic()
        self.idle_skips = 0
        self._built: asyncio.Event | None = None  # set by _publish; in the exporter's loop

    # --- from the Monitor's loop ---------------------------------------------------------------

    def on_snapshot(self, snap: Snapshot) -> None:
        self.seq += 1
        if not self.viewers and time.monotonic() > self.wanted_until:
            self.idle_skips += 1  # nobody attached for a while: no document is built
            return
        alerts = None
        if self.alerts is not None:
            try:
                alerts = self.alerts.state()
            except Exception:  # the API must not take the daemon down
                log.exception("alerts state for the API failed")
        daemon = {
            "rules": self._rules(),
            "pid": os.getpid(),
            "started": round(self.started, 3),
            "actions": self.actions is not None,
            "read_only": bool(getattr(self.actions, "read_only", True)),
            "recording": self.recording is not None,
        }
        # The JSON is built in the exporter's thread: a large fleet's document takes tens of ms,
        # which must not stall the Monitor's loop (its probes would measure the stall). The
        # Snapshot and the alerts view are immutable, so the other thread may read them.
        job = (snap, self.seq, self.interval(), daemon, alerts)
        if self.loop is None or not self.loop.is_running():  # not served (yet, or any more): keep it
            self._build(*job)
            return
        with contextlib.suppress(RuntimeError):  # the exporter's loop has ended: the daemon stops
            self.loop.call_soon_threadsafe(self._build, *job)

    def _rules(self) -> list[dict[str, Any]]:
        """The alert rules (presets included) the daemon judges by, so an attached dashboard
        colours values as the daemon alerts on them; without channels or the config's file:line."""
        if self._rules_json is None:
            from cachetop.exporters.api_json import encode

            rules = getattr(self.alerts, "rules", ()) if self.alerts is not None else ()
            drop = ("channels", "where")
            self._rules_json = [{k: v for k, v in encode(r).items() if k not in drop} for r in rules]
        return self._rules_json

    # --- in the exporter's loop ----------------------------------------------------------------

    def _build(self, snap: Snapshot, seq: int, interval: float, daemon: dict[str, Any], alerts: Any) -> None:
        doc, data = snapshot_document(
            snap, seq=seq, interval=interval, daemon=daemon, alerts=alerts, views=self._views
        )
        frame = b"id: %d\nevent: snapshot\ndata: %s\n\n" % (seq, data)
        self._publish(doc, data, frame, snap.time)

    def _publish(self, doc: dict[str, Any], data: bytes, frame: bytes, when: float) -> None:
        self.latest, self.latest_doc = data, doc
        self.latest_seq = int(doc["seq"])
        if self._built is not None:
            self._built.set()
        if len(self.ring) == RING_FRAMES:
            self.ring_bytes -= len(self.ring[0][1])
        self.ring.append((when, frame))
        self.ring_bytes += len(frame)
        while self.ring_bytes > RING_BYTES and len(self.ring) > 1:
            self.ring_bytes -= len(self.ring.popleft()[1])
        for viewer in self.viewers:
            if len(viewer.frames) == QUEUE_FRAMES:
                viewer.dropped += 1
            viewer.frames.append(frame)
            viewer.wake.set()

    def authorised(self, req: Request) -> bool:
        scheme, _, given = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)

    async def handle(self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if "authorization" not in req.headers:
            await _send(writer, 401, {"error": "no token: send `Authorization: Bearer TOKEN` "
                                               "(the daemon's [settings] api_token)"})  # fmt: skip
            return
        if not self.authorised(req):
            log.warning("api: refused a request from %s: wrong token", req.peer)
            await _send(writer, 401, {"error": "wrong token: the daemon refused it (401)"})
            return
        self.wanted_until = time.monotonic() + KEEP_BUILDING_S
        route = req.path[len(PREFIX) :] if req.path.startswith(PREFIX) else None
        if route in ("snapshot", "hotkeys", "alerts") and not await self._current():
            await _send(writer, 503, {"error": "no snapshot yet: the first poll is under way"})
            return
        if req.method == "POST" and route is not None and route.startswith("actions/"):
            await self._action(route[len("actions/") :], req, reader, writer)
        elif req.method != "GET":
            await _send(writer, 405, {"error": "only GET here (POST for /api/v1/actions/...)"})
        elif route == "snapshot":
            await self._snapshot(writer)
        elif route == "stream":
            await self._stream(req, writer)
        elif route == "hotkeys":
            await self._hotkeys(writer)
        elif route == "alerts":
            await _send(
                writer, 200, {"alerts": None if self.latest_doc is None else self.latest_doc["alerts"]}
            )
        elif route == "recording":
            await self._recording(writer)
        else:
            paths = "snapshot, stream, hotkeys, alerts, recording, actions/evict"
            await _send(writer, 404, {"error": f"no such path; under /api/v1/: {paths}"})

    async def _current(self) -> bool:
        """Waits (at most about an interval) until the latest snapshot's document is built: after
        an idle spell the daemon builds none until asked. False when none came."""
        if self.latest_seq == self.seq and self.latest is not None:
            return True
        if self._built is None:
            self._built = asyncio.Event()
        self._built.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._built.wait(), 2 * self.interval() + 2.0)
        return self.latest is not None

    async def _snapshot(self, writer: asyncio.StreamWriter) -> None:
        assert self.latest is not None  # handle() waited for it
        await _write(writer, _head(200, "application/json", len(self.latest)) + self.latest)

    async def _hotkeys(self, writer: asyncio.StreamWriter) -> None:
        from cachetop.exporters.api_json import decode
        from cachetop.hotkeys.view import HotKeysView

        doc = self.latest_doc or {"instances": []}
        out = {
            i["name"]: decode(HotKeysView, i["hotkeys_view"]).to_json()
            for i in doc["instances"]
            if i.get("hotkeys_view") is not None
        }
        await _send(writer, 200, {"instances": out})

    async def _stream(self, req: Request, writer: asyncio.StreamWriter) -> None:
        if len(self.viewers) >= MAX_STREAMS:
            await _send(writer, 503, {"error": f"too many viewers (at most {MAX_STREAMS})"})
            return
        viewer = _Viewer()
        try:
            since = float(req.query.get("since", "inf"))
        except ValueError:
            since = float("inf")
        backlog = [frame for when, frame in self.ring if when > since]
        if not backlog and self.ring and self.latest_seq == self.seq:
            backlog = [self.ring[-1][1]]  # the latest at once (unless old: idle, none was built)
        viewer.frames = collections.deque(backlog[-RING_FRAMES:], maxlen=max(QUEUE_FRAMES, len(backlog)))
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            b"X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
        )
        self.viewers.add(viewer)
        try:
            await _write(writer, head + b"retry: 1000\n\n")
            while True:
                if not viewer.frames:
                    viewer.wake.clear()
                    try:
                        await asyncio.wait_for(viewer.wake.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        await _write(writer, b": keep-alive\n\n")
                        continue
                frames = list(viewer.frames)
                viewer.frames.clear()
                if viewer.frames.maxlen != QUEUE_FRAMES:
                    viewer.frames = collections.deque(maxlen=QUEUE_FRAMES)
                for frame in frames:  # one at a time: a copy of at most one frame waits per viewer
                    await _write(writer, frame)
        finally:
            self.viewers.discard(viewer)

    async def _recording(self, writer: asyncio.StreamWriter) -> None:
        if self.recording is None or not self.recording.exists():
            await _send(writer, 404, {"error": "this daemon records nothing (start it with --record FILE)"})
            return
        # A consistent copy: SQLite's backup API, in a thread (the recorder keeps writing).
        data = await asyncio.to_thread(_copy_recording, self.recording)
        await _write(writer, _head(200, "application/octet-stream", len(data)) + data)

    async def _action(
        self, name: str, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.actions is None:
            await _send(writer, 403, {"error": "actions are off on this daemon (no [settings] action_token)"})
            return
        try:
            length = int(req.headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY_BYTES:
            await _send(writer, 400, {"error": f"send a JSON body of at most {MAX_BODY_BYTES} bytes"})
            return
        try:
            body = json.loads(await asyncio.wait_for(reader.readexactly(length), BODY_TIMEOUT_S))
        except (TimeoutError, asyncio.IncompleteReadError, ValueError):
            await _send(writer, 400, {"error": "the body is not JSON"})
            return
        if not isinstance(body, dict):
            await _send(writer, 400, {"error": "the body must be a JSON object"})
            return
        status, doc = await self.actions.handle(name, body, req)
        await _send(writer, status, doc)


def _copy_recording(path: Path) -> bytes:
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "copy.ctrec"
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return out.read_bytes()


def parse_request(head: bytes, peer: str = "") -> Request | None:
    """The request line and headers; None when it is not HTTP."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    url = urllib.parse.urlsplit(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    return Request(parts[0], url.path, query, headers, peer)


_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error", 503: "Service Unavailable",
}  # fmt: skip


def _head(status: int, content_type: str, length: int, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n"
    ).encode("latin-1")


async def _send(writer: asyncio.StreamWriter, status: int, doc: Any) -> None:
    body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    extra = 'WWW-Authenticate: Bearer realm="cachetop"\r\n' if status == 401 else ""
    await _write(writer, _head(status, "application/json", len(body), extra) + body)


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    for start in range(0, len(data), CHUNK):
        writer.write(data[start : start + CHUNK])
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
