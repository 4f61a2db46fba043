"""`/healthz` (JSON; 503 when the database or Redis is down) and `/metrics`."""
from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from core.models import Loan, OutboxMessage, Payout, PayoutStatus, ProviderFloat
from runtime.http import services
from runtime.metrics import REGISTRY as PROCESS_REGISTRY
from runtime.services import Services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    svc = services()
    state: dict[str, Any] = {}
    ok = True
    started = time.perf_counter()
    try:
        with svc.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        state["database"] = {"ok": True, "backend": svc.db.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        ok = False
        state["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        svc.redis.client.ping()
        state["redis"] = {"ok": True, "embedded": svc.redis.embedded}
    except Exception as exc:  # noqa: BLE001
        ok = False
        state["redis"] = {"ok": False, "error": type(exc).__name__}
    state["status"] = "ok" if ok else "degraded"
    state["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return jsonify(state), 200 if ok else 503


class _LedgerCollector:
    """Business gauges read from the database at scrape time (shared across workers)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Any:
        loans = GaugeMetricFamily("harambee_loans", "Loans by status", labels=["status"])
        outbox = GaugeMetricFamily("harambee_outbox", "Outbox rows by status", labels=["status"])
        payouts = GaugeMetricFamily("harambee_payouts", "Payouts by status", labels=["status"])
        paused = GaugeMetricFamily("harambee_payouts_paused",
                                   "Payouts waiting because the provider's float is low")
        floats = GaugeMetricFamily("harambee_provider_float_minor",
                                   "The payout provider's last reported float, minor units",
                                   labels=["provider"])
        try:
            with self.svc.db.sessions() as session:
                for status, count in session.execute(
                        select(Loan.status, func.count()).group_by(Loan.status)):
                    loans.add_metric([status], count)
                for status, count in session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)):
                    outbox.add_metric([status], count)
                for status, count in session.execute(
                        select(Payout.status, func.count()).group_by(Payout.status)):
                    payouts.add_metric([status], count)
                paused.add_metric([], session.scalar(
                    select(func.count()).select_from(Payout).where(
                        Payout.status == PayoutStatus.PENDING,
                        Payout.last_error.like("paused%"))) or 0)
                for provider, available in session.execute(
                        select(ProviderFloat.provider, ProviderFloat.available)):
                    floats.add_metric([provider], available)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the DB blinked
            pass
        yield from (loans, outbox, payouts, paused, floats)


@bp.get("/metrics")
def metrics() -> Response:
    svc = services()
    token = svc.settings.security.metrics_token
    if token and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return Response("a bearer token is needed\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = current_app.extensions.get("harambee_registry")
    if registry is None:
        registry = CollectorRegistry()
        registry.register(_LedgerCollector(svc))  # type: ignore[arg-type]
        current_app.extensions["harambee_registry"] = registry
    body = generate_latest(registry) + generate_latest(PROCESS_REGISTRY)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
