"""POST /api/v1/actions/evict: an attached dashboard's evict, run by the daemon with its own checks.

Two steps, as on a local screen:

    {"instance": "cache-1", "keys": ["<base64>", ...], "dry_run": true}
          (or "pattern" / "prefix", each with an optional "idle_over_s")
      -> 200 {"plan": "9f2c...", "matched": 3, "examples": [...], "summary": "would evict ..."}
    {"plan": "9f2c...", "confirm": true}
      -> 200 {"matched": 3, "evicted": 3, "complete": true, "summary": "evicted ...", "error": null}

Besides the API token, every call needs the action token ([settings] action_token) in the
`X-Cachetop-Action-Token` header, compared in constant time: 403 without it. The daemon runs
the same path as `cachetop evict` and the dashboard (actions/evict.py: preflight of every node,
all or nothing, the rate budget), refuses under --read-only or an instance's read_only = true,
and writes every outcome (refused, intent, done, failed) to its own audit log with source "api"
and the viewer's address. A plan is kept PLAN_TTL_S and runs once: the confirm carries out
exactly the request the dry run counted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetop.actions.audit import AuditError, AuditLog, ReadOnlyError, check_writable
from cachetop.actions.evict import EvictRequest, EvictResult, summary
from cachetop.actions.evict_run import run_evict
from cachetop.actions.own_report import EVICT, NOT_REPORTED, thread_own_report
from cachetop.actions.redis_nodes import ActionError
from cachetop.engine.config import Config, InstanceConfig
from cachetop.util.safe_text import display_key

ACTION_HEADER = "x-cachetop-action-token"
PLAN_TTL_S = 300.0
MAX_PLANS = 64
MAX_KEYS = 1000


@dataclass(frozen=True, slots=True)
class Plan:
    inst: InstanceConfig
    request: EvictRequest
    matched: int
    created: float
    viewer: str


class ApiActions:
    """The daemon's side of actions from attached dashboards."""

    def __init__(
        self,
        config: Config,
        token: str,
        *,
        read_only: bool = False,
        backend_of: Callable[[str], object | None] = lambda _name: None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.read_only = read_only
        # The instance's poller's backend, and the loop it polls on: an evict run here reports what
        # it sends there, so it does not show in the instance's ops/s (actions/own_report.py).
        self.backend_of = backend_of
        self.loop = loop
        self._token = token.encode()
        self._plans: dict[str, Plan] = {}
        self.audit = AuditLog(config.settings.state_dir, source="api")

    async def handle(self, name: str, body: dict[str, Any], req: Any) -> tuple[int, dict[str, Any]]:
        given = req.headers.get(ACTION_HEADER, "").encode()
        if not given:
            return 403, {"error": "read-only: this request has no action token (X-Cachetop-Action-Token)"}
        if not hmac.compare_digest(given, self._token):
            return 403, {"error": "refused: wrong action token"}
        if name != "evict":
            return 404, {"error": "no such action; there is: evict"}
        if "plan" in body:
            return await self._confirm(str(body["plan"]), bool(body.get("confirm")), req.peer)
        return await self._dry_run(body, req.peer)

    def _instance(self, name: str) -> InstanceConfig | None:
        return next((i for i in self.config.instances if i.name == name), None)

    async def _dry_run(self, body: dict[str, Any], viewer: str) -> tuple[int, dict[str, Any]]:
        inst = self._instance(str(body.get("instance", "")))
        if inst is None:
            return 404, {"error": f"no instance named {display_key(str(body.get('instance', '')), 60)}"}
        try:
            request = _request(body)
        except ValueError as exc:
            return 400, {"error": str(exc)}
        if inst.target.kind == "memcached" and not request.keys:
            return 400, {"error": "memcached cannot evict by pattern: name the keys"}
        try:
            check_writable(inst, read_only=self.read_only, action="evict", config_path=self.config.path)
        except ReadOnlyError as exc:
            self._record(inst, "refused", reason=str(exc), what=request.describe(), viewer=viewer)
            return 403, {"error": str(exc)}
        try:
            result = await asyncio.to_thread(self._run, inst, request, True)
        except ActionError as exc:
            return 502, {"error": str(exc)}
        if result.error:
            return 502, {"error": result.error, "summary": summary(result, inst.name)}
        self._expire()
        plan_id = secrets.token_hex(12)
        self._plans[plan_id] = Plan(inst, request, result.matched, time.monotonic(), viewer)
        return 200, {
            "plan": plan_id,
            "instance": inst.name,
            "matched": result.matched,
            "examples": [display_key(k, 120) for k in result.examples],
            "summary": summary(result, inst.name),
            "what": request.label(),
            "expires_in_s": PLAN_TTL_S,
        }

    async def _confirm(self, plan_id: str, confirm: bool, viewer: str) -> tuple[int, dict[str, Any]]:
        self._expire()
        plan = self._plans.pop(plan_id, None)
        if plan is None:
            return 409, {"error": "no such plan (it ran, or expired after 5 minutes): dry-run again"}
        what = plan.request.describe()
        if not confirm:
            self._record(plan.inst, "declined", what=what, matched=plan.matched, viewer=viewer)
            return 200, {"declined": True}
        run_id = secrets.token_hex(6)
        try:
            self._record(plan.inst, "intent", strict=True, run=run_id, what=what, matched=plan.matched,
                         dry_run=False, viewer=viewer)  # fmt: skip
        except AuditError as exc:
            return 503, {"error": f"refused: {exc}; nothing was evicted"}
        try:
            result = await asyncio.to_thread(self._run, plan.inst, plan.request, False)
        except ActionError as exc:
            result = EvictResult(dry_run=False, error=str(exc))
        outcome = "cancelled" if result.cancelled else "failed" if result.error else "done"
        fields: dict[str, Any] = {"matched": result.matched, "evicted": result.evicted, "dry_run": False,
                                  "complete": result.complete, "run": run_id, "viewer": viewer}  # fmt: skip
        if result.error:
            fields["error"] = result.error
        self._record(plan.inst, outcome, what=what, **fields)
        return 200, {
            "instance": plan.inst.name,
            "matched": result.matched,
            "evicted": result.evicted,
            "complete": result.complete,
            "error": result.error,
            "summary": summary(result, plan.inst.name),
        }

    def _run(self, inst: InstanceConfig, request: EvictRequest, dry_run: bool) -> EvictResult:
        timeout = max(self.config.timeout_of(inst), 5.0)
        own = None if self.loop is None else thread_own_report(self.backend_of(inst.name), self.loop, EVICT)
        return run_evict(
            inst, request, dry_run=dry_run, timeout=timeout, cancel=threading.Event(), own=own or NOT_REPORTED
        )

    def _record(self, inst: InstanceConfig, outcome: str, *, strict: bool = False, **fields: Any) -> None:
        try:
            self.audit.record("evict", inst, outcome=outcome, **fields)
        except AuditError:
            if strict:
                raise

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, p in self._plans.items() if now - p.created > PLAN_TTL_S]:
            del self._plans[key]
        while len(self._plans) >= MAX_PLANS:
            del self._plans[next(iter(self._plans))]


def _request(body: dict[str, Any]) -> EvictRequest:
    """The EvictRequest a body names: "keys" (base64 of the raw keys), "pattern" or "prefix"."""
    keys: tuple[bytes, ...] = ()
    if body.get("keys"):
        raw = body["keys"]
        if not isinstance(raw, list) or len(raw) > MAX_KEYS:
            raise ValueError(f"keys: a list of at most {MAX_KEYS} base64 strings")
        try:
            keys = tuple(base64.b64decode(str(k), validate=True) for k in raw)
        except binascii.Error:
            raise ValueError("keys: each key is base64 of its raw bytes") from None
    pattern = str(body["pattern"]).encode("utf-8", "surrogateescape") if body.get("pattern") else None
    prefix = str(body["prefix"]).encode("utf-8", "surrogateescape") if body.get("prefix") else None
    idle = body.get("idle_over_s")
    if idle is not None and (not isinstance(idle, int) or isinstance(idle, bool)):
        raise ValueError("idle_over_s: a whole number of seconds")
    return EvictRequest(keys=keys, pattern=pattern, prefix=prefix, idle_over_s=idle)
