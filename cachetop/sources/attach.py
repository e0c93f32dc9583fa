"""AttachSource: a `cachetop daemon`'s snapshots over its /api/v1/stream, as a Source.

    source = AttachSource("https://cachetop.internal:9150", token, ca_file="ca.pem")
    await source.start()        # returns at once; the stream is read in a task
    source.subscribe(app.on_snapshot) ...; await source.stop()

A dashboard attached this way opens no connection to any cache: every number, hot key and alert
state is the daemon's (exporters/api.py). It cannot pause, step, seek or change the pace (the
daemon owns them); it can act (evict) only with an action token, and then the daemon runs the
action with its own checks and audit log (sources/link.RemoteActions).

When the stream ends (the daemon stopped, the network went, the token was refused) the source
says why in `link_problem`, keeps `last_data`, and reconnects with backoff (RETRY_FIRST_S,
doubling, at most half an interval or RETRY_MAX_S; AUTH_RETRY_S after a 401). It asks for the
snapshots it missed (`?since=`), so a short loss leaves no hole; when the daemon no longer has
them (it restarted), one snapshot with every instance `unknown` marks the gap, so a chart shows
a break instead of joining the two sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from dataclasses import replace
from typing import Any

from cachetop.alerts.service import AlertsView
from cachetop.engine.source import SourceBase, SourceCapabilities
from cachetop.exporters.api_json import decode, snapshot_from_json
from cachetop.hotkeys.view import HotKeysView
from cachetop.model import Snapshot, Status
from cachetop.sources.http_client import Endpoint, HttpError, Response, request
from cachetop.sources.link import RemoteActionError

log = logging.getLogger("cachetop.attach")

RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0
AUTH_RETRY_S = 10.0
STALL_INTERVALS = 3.0  # connected, but no snapshot for this many intervals: the banner says so
READ_TIMEOUT_S = 40.0  # the daemon sends a keep-alive every 15 s: silence this long is a lost link
GAP_INTERVALS = 2.5  # snapshots further apart than this many intervals have a gap between them


class AttachedAlerts:
    """The daemon's alert states, for the header badge and the alerts panel (AlertService.state's shape)."""

    def __init__(self) -> None:
        self.view: AlertsView | None = None

    def state(self, history: int = 50, problems: int = 20) -> AlertsView | None:
        view = self.view
        if view is None:
            return None
        return replace(view, history=view.history[:history], problems=view.problems[:problems])


class AttachSource(SourceBase):
    def __init__(
        self,
        url: str,
        token: str,
        *,
        action_token: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        super().__init__(interval=1.0)
        self.endpoint = Endpoint.parse(url)
        self._token = token
        self._action_token = action_token
        self.capabilities = SourceCapabilities(act=bool(action_token))
        self._ssl: ssl.SSLContext | None = None
        if self.endpoint.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=ca_file)
        self.alerts = AttachedAlerts()
        self.daemon: dict[str, Any] = {}
        self.rules: tuple[Any, ...] = ()  # the daemon's alert rules (alerts.rules.Rule), for colours
        self._rules_json: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._problem: str | None = None
        self._last_data: float | None = None
        self.seq = 0
        self._logged = ""  # the last reason logged: a retry for the same reason is not logged again
        self._arrived = 0.0  # loop time of the last snapshot received (a clock of this machine)
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.gaps = 0

    # --- LinkStatus ------------------------------------------------------------------------------

    @property
    def link_problem(self) -> str | None:
        return self._problem

    @property
    def last_data(self) -> float | None:
        return self._last_data

    @property
    def where(self) -> str:
        return self.endpoint.display

    # --- Source ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._problem = f"connecting to {self.where}…"
            self._task = asyncio.create_task(self._run(), name="attach")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _headers(self) -> dict[str, str]:
        # No token at all: no header, so the daemon's 401 says "no token" rather than "wrong".
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _run(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            try:
                await self._follow()
                reason = "the daemon closed the stream"
                delay = RETRY_FIRST_S
            except HttpError as exc:
                reason = str(exc)
                if exc.status == 401:
                    delay = AUTH_RETRY_S
            except ConnectionRefusedError:
                reason = f"{self.where}: connection refused (is the daemon running?)"
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError) as exc:
                reason = f"{self.where}: {getattr(exc, 'strerror', None) or 'the connection was lost'}"
            except TimeoutError:
                reason = f"{self.where}: nothing received for {READ_TIMEOUT_S:g}s"
            except ValueError as exc:  # a document that is not a snapshot
                reason = f"{self.where}: unreadable snapshot ({exc})"
            self.connected.clear()
            wait = delay * random.uniform(0.8, 1.2)
            self._problem = f"{reason} · retrying every {max(wait, 0.1):.1f}s"
            if reason != self._logged:  # once per reason, not once per retry
                self._logged = reason
                log.warning("attach: %s (retrying with backoff)", reason)
            await asyncio.sleep(wait)
            self.reconnects += 1
            if delay < AUTH_RETRY_S:
                # At most half an interval apart: back within 2 intervals of the daemon's return.
                delay = min(delay * 2, RETRY_MAX_S, max(self.interval / 2, RETRY_FIRST_S))

    async def _follow(self) -> None:
        path = "/api/v1/stream"
        if self._last_data is not None:
            path += f"?since={self._last_data:.3f}"
        resp = await request(self.endpoint, "GET", path, headers=self._headers(), ssl_context=self._ssl)
        try:
            if resp.status != 200:
                raise HttpError(await _refusal(resp), resp.status)
            self.connected.set()
            log.info("attach: receiving snapshots from %s", self.where)
            self._logged = ""
            self._arrived = asyncio.get_running_loop().time()
            await self._events(resp)
        finally:
            resp.close()

    async def _events(self, resp: Response) -> None:
        data: list[bytes] = []
        event = "message"
        loop = asyncio.get_running_loop()
        heard = loop.time()  # the last line of any kind (a snapshot or a keep-alive)
        while True:
            stall = max(STALL_INTERVALS * self._interval, 1.0)
            try:
                line = await asyncio.wait_for(resp.reader.readline(), min(stall, READ_TIMEOUT_S))
            except TimeoutError:
                silent = loop.time() - heard
                if silent >= READ_TIMEOUT_S:
                    raise
                quiet = loop.time() - self._arrived
                if quiet >= stall:  # connected, but no snapshot: say so now, not when the socket gives up
                    self._problem = f"no snapshot for {quiet:.0f}s: the daemon or the link stalls"
                continue
            heard = loop.time()
            if not line:
                return  # the daemon went away
            line = line.rstrip(b"\r\n")
            if not line:
                if data and event == "snapshot":
                    await self._take(json.loads(b"\n".join(data)))
                data, event = [], "message"
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("ascii", "replace")
            # id:, retry: and comments (the keep-alive) carry nothing kept

    async def _take(self, doc: dict[str, Any]) -> None:
        snap = snapshot_from_json(doc, HotKeysView)
        self.seq = int(doc.get("seq", 0))
        self._interval = float(doc.get("interval") or self._interval)
        self.daemon = dict(doc.get("daemon") or {})
        can = (
            bool(self._action_token) and bool(self.daemon.get("actions")) and not self.daemon.get("read_only")
        )
        if can != self.capabilities.act:  # the daemon has actions off, or runs --read-only
            self.capabilities = SourceCapabilities(act=can)
        rules = self.daemon.get("rules") or []
        if rules != self._rules_json:
            from cachetop.alerts.rules import Rule

            self._rules_json = rules
            self.rules = tuple(decode(Rule, r) for r in rules)
        alerts = doc.get("alerts")
        self.alerts.view = None if alerts is None else decode(AlertsView, alerts)
        before = self._latest
        if before is not None and snap.time - before.time > GAP_INTERVALS * self._interval:
            self.gaps += 1
            await self.deliver(gap_snapshot(before, before.time + self._interval, snap.time))
        self._last_data = snap.time
        self._arrived = asyncio.get_running_loop().time()
        self._problem = None
        await self.deliver(snap)

    # --- RemoteActions ---------------------------------------------------------------------------

    @property
    def can_act(self) -> bool:
        return self.capabilities.act

    @property
    def read_only_reason(self) -> str:
        if not self._action_token:
            return (
                "read-only: attached without an action token ($CACHETOP_ACTION_TOKEN or --action-token-file)"
            )
        if self.daemon and not self.daemon.get("actions"):
            return "read-only: the daemon takes no actions (no [settings] action_token in its config)"
        if self.daemon.get("read_only"):
            return "read-only: the daemon runs with --read-only"
        return ""

    async def evict_dry_run(self, instance: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._action({"instance": instance, **body, "dry_run": True})

    async def evict_confirm(self, plan: str, confirm: bool = True) -> dict[str, Any]:
        return await self._action({"plan": plan, "confirm": confirm})

    async def _action(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self._action_token:
            raise RemoteActionError(
                "read-only: attached without an action token ($CACHETOP_ACTION_TOKEN or --action-token-file)"
            )
        headers = {**self._headers(), "X-Cachetop-Action-Token": self._action_token}
        try:
            resp = await request(self.endpoint, "POST", "/api/v1/actions/evict", headers=headers, body=body,
                                 ssl_context=self._ssl, timeout=15.0)  # fmt: skip
        except HttpError as exc:
            raise RemoteActionError(str(exc)) from None
        try:
            # A large evict runs at the daemon's rate budget: wait for it as long as it takes.
            doc = await resp.json(timeout=3600.0)
        except (HttpError, TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise RemoteActionError(f"{self.where}: no answer to the action ({type(exc).__name__})") from None
        finally:
            resp.close()
        if resp.status != 200:
            raise RemoteActionError(str(doc.get("error") if isinstance(doc, dict) else doc))
        return dict(doc)


async def _refusal(resp: Response) -> str:
    """One line for a non-200 answer to the stream."""
    try:
        doc = await resp.json(timeout=5.0)
        detail = str(doc.get("error", "")) if isinstance(doc, dict) else ""
    except (HttpError, TimeoutError, OSError, asyncio.IncompleteReadError):
        detail = ""
    if resp.status == 401:
        hint = "set $CACHETOP_TOKEN or --token-file to the daemon's [settings] api_token"
        return f"the daemon refused the token (401: {detail or 'unauthorized'}); {hint}"
    if resp.status == 404:
        return f"no API there (404: {detail or 'not found'})"
    return f"the daemon answered {resp.status}: {detail or 'error'}"


def gap_snapshot(before: Snapshot, at: float, until: float) -> Snapshot:
    """Every instance `unknown` and without values: what a chart draws as a break."""
    since = time.strftime("%H:%M:%S", time.localtime(before.time))
    back = time.strftime("%H:%M:%S", time.localtime(until))
    note = f"no data from the daemon from {since} to {back}"
    instances = tuple(
        replace(i, status=Status.UNKNOWN, error=note, metrics={}, stale=True, extras={})
        for i in before.instances
    )
    return Snapshot(time=at, window_s=before.window_s, instances=instances)
