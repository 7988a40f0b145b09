"""The routes of the webhook server and the thin glue around the pure admission decisions.

Each review is read (400 with a reason when it is not an AdmissionReview), decided by
:mod:`kaip_incluster.admission`, logged as one JSON line (uid, namespace, name, key names; never a
value) and timed. An unexpected error never becomes a 5xx: the Secret validator then denies (it is
``failurePolicy: Fail``), the Pod mutator admits unchanged with a warning (it fails open, and the
ValidatingAdmissionPolicy refuses a Pod that lacks its credentials).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kaip_incluster.admission import inject, review
from kaip_incluster.admission.errors import MalformedReview
from kaip_incluster.admission.mutators import MUTATORS
from kaip_incluster.admission.pods import Mutator, PodContext, SecretInfo, ServiceAccountInfo, mutate_pod
from kaip_incluster.admission.preload_gate import ClaimState, preload_gate
from kaip_incluster.admission.secrets import key_names, validate_secret
from kaip_incluster.server.cache import CacheMiss, WatchCache
from kaip_incluster.server.metrics import Metrics

log = logging.getLogger("kaip.webhook.review")

VALIDATE_SECRETS = "/validate/secrets"
MUTATE_PODS = "/mutate/pods"
ROUTES = (VALIDATE_SECRETS, MUTATE_PODS)
#: A Secret holds at most 1 MiB; an UPDATE review carries it twice plus metadata.
MAX_BODY = 4 * 1024 * 1024

T = TypeVar("T")


@dataclass
class State:
    metrics: Metrics
    secrets: WatchCache[SecretInfo] | None = None
    service_accounts: WatchCache[ServiceAccountInfo] | None = None
    claims: WatchCache[ClaimState] | None = None
    tls_loaded: bool = False

    def ready(self) -> bool:
        caches = [c for c in (self.secrets, self.service_accounts, self.claims) if c is not None]
        return self.tls_loaded and len(caches) == 3 and all(c.synced.is_set() for c in caches)

    def mutators(self) -> tuple[Mutator, ...]:
        """Credentials injection, then the data-preload gate (PVC state from the cache only: a PVC
        the cache does not know gates the Pod, and the data-loader controller releases it)."""
        if self.claims is None:
            return MUTATORS
        return (*MUTATORS, preload_gate(self.claims.get))


STATE: web.AppKey[State] = web.AppKey("state", State)


def _log(entry: dict[str, Any]) -> None:
    log.info(orjson.dumps(entry).decode())


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": "malformed AdmissionReview", "reason": reason}, status=400)


def _answer(uid: str, verdict: review.Verdict) -> web.Response:
    return web.Response(
        body=orjson.dumps(review.build_response(uid, verdict)), content_type="application/json"
    )


def _outcome(verdict: review.Verdict) -> str:
    return "allowed" if verdict.allowed else "denied"


def _name_of(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return ""
    return str(meta.get("name") or meta.get("generateName") or "")


async def _decide_secret(req: review.AdmissionRequest, state: State) -> tuple[review.Verdict, dict[str, Any]]:
    obj = req.object
    if req.operation in ("CREATE", "UPDATE") and obj is None:
        raise MalformedReview("request.object is missing")
    verdict = validate_secret(obj) if obj is not None and req.kind == "Secret" else review.Verdict()
    return verdict, {"type": str((obj or {}).get("type") or ""), "keys": key_names(obj or {})}


async def _decide_pod(req: review.AdmissionRequest, state: State) -> tuple[review.Verdict, dict[str, Any]]:
    if req.operation == "CREATE" and req.object is None:
        raise MalformedReview("request.object is missing")
    if req.operation != "CREATE" or req.kind != "Pod" or req.object is None:
        return review.Verdict(), {}
    pod = dict(req.object)
    try:
        context = await _context(req, pod, state)
    except CacheMiss as exc:
        return review.Verdict(allowed=False, code=503, message=f"kaip credentials webhook: {exc.message}"), {}
    verdict = mutate_pod(pod, context, mutators=state.mutators())
    if verdict.patch:
        state.metrics.patched.inc()
    return verdict, {"patchOps": len(verdict.patch)}


Decide = Callable[[review.AdmissionRequest, State], Awaitable[tuple[review.Verdict, dict[str, Any]]]]
#: What an unexpected error answers: the Secret validator fails closed (as ``failurePolicy: Fail``
#: would), the Pod mutator fails open, visibly (the ValidatingAdmissionPolicy still guards the Pod).
_ON_ERROR = {
    "validate-secrets": review.Verdict(
        allowed=False,
        code=500,
        message=(
            "kaip credentials validation failed unexpectedly, a kaip-webhook bug (its log has the "
            "details, never a value); the Secret was not stored: please report it"
        ),
    ),
    "mutate-pods": review.Verdict(
        warnings=["kaip credentials webhook failed unexpectedly; nothing was injected"]
    ),
}


def _invalid(state: State, webhook: str, exc: MalformedReview, started: float) -> web.Response:
    state.metrics.duration.labels(webhook, "invalid").observe(time.perf_counter() - started)
    _log({"webhook": webhook, "error": exc.message})
    return _bad_request(exc.message)


async def _serve(request: web.Request, webhook: str, decide: Decide) -> web.Response:
    state = request.app[STATE]
    started = time.perf_counter()
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _bad_request(f"the body is larger than {MAX_BODY} bytes")
    try:
        req = review.parse(body)
    except MalformedReview as exc:
        return _invalid(state, webhook, exc, started)
    try:
        verdict, details = await decide(req, state)
        outcome = _outcome(verdict)
    except MalformedReview as exc:
        return _invalid(state, webhook, exc, started)
    except Exception as exc:  # a bug must not become a 5xx
        log.exception("%s failed unexpectedly (%s)", webhook, type(exc).__name__)
        verdict, details, outcome = _ON_ERROR[webhook], {}, "error"
    elapsed = time.perf_counter() - started
    state.metrics.duration.labels(webhook, outcome).observe(elapsed)
    if verdict.warnings:
        state.metrics.warnings.labels(webhook).inc(len(verdict.warnings))
    _log(
        {
            "webhook": webhook,
            "uid": req.uid,
            "operation": req.operation,
            "namespace": req.namespace,
            "name": req.name or _name_of(req.object),
            "dryRun": req.dry_run,
            "allowed": verdict.allowed,
            "message": verdict.message,
            "warnings": len(verdict.warnings),
            "ms": round(elapsed * 1000, 3),
            **details,
        }
    )
    return _answer(req.uid, verdict)


async def validate_secrets(request: web.Request) -> web.Response:
    return await _serve(request, "validate-secrets", _decide_secret)


async def mutate_pods(request: web.Request) -> web.Response:
    return await _serve(request, "mutate-pods", _decide_pod)


async def _lookup(
    cache: WatchCache[T] | None, namespace: str, name: str, state: State, resource: str
) -> T | None:
    if cache is None:
        return None
    found = cache.get(namespace, name)
    if found is not None:
        return found
    state.metrics.lookups.labels(resource).inc()
    return await asyncio.get_running_loop().run_in_executor(None, cache.fetch, namespace, name)


async def _context(req: review.AdmissionRequest, pod: dict[str, Any], state: State) -> PodContext:
    account: ServiceAccountInfo | None = None
    account_name = inject.service_account_name(pod)
    if not inject.names_on_pod(pod) and inject.valid_name(account_name):
        account = await _lookup(state.service_accounts, req.namespace, account_name, state, "serviceaccounts")
    names, _ = inject.requested(pod, account)
    secrets: dict[str, SecretInfo | None] = {}
    for name in inject.lookup_names(names):
        info: SecretInfo | None = await _lookup(state.secrets, req.namespace, name, state, "secrets")
        secrets[name] = info
    return PodContext(namespace=req.namespace, service_account=account, secrets=secrets, dry_run=req.dry_run)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ready = state.ready()
    state.metrics.ready.set(1 if ready else 0)
    if ready:
        return web.Response(text="ok")
    return web.Response(status=503, text="caches not synced yet")


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    for name, cache in (("secrets", state.secrets), ("serviceaccounts", state.service_accounts)):
        if cache is not None:
            state.metrics.cache_objects.labels(name).set(len(cache.items))
    body = generate_latest(state.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(state: State) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = state
    app.router.add_post(VALIDATE_SECRETS, validate_secrets)
    app.router.add_post(MUTATE_PODS, mutate_pods)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
