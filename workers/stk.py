"""Pay-now prompts, pushed outside any transaction: a job per new request, and a sweep
for requests whose job was lost and prompts whose result never came."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from core import stk
from core.db import UnitOfWork
from core.stk import PromptRefused, StkGateway
from runtime.services import Services

log = logging.getLogger(__name__)

RESULT_WAIT = timedelta(minutes=10)  # a prompt lasts about a minute on the phone


def push(new_uow: Callable[[], UnitOfWork], gateway: StkGateway, request_id: int,
         now: datetime) -> str:
    """Push one pending request's prompt: `pushed`, `refused`, or `skipped` (not pending).
    Never pushed twice: a second prompt would ask for the money twice."""
    prompt = stk.claim(new_uow(), request_id, now)
    if prompt is None:
        return "skipped"
    try:
        checkout = gateway.push(prompt)
    except PromptRefused as exc:
        log.warning("STK request %s not pushed: %s", request_id, exc)
        stk.record_refused(new_uow(), request_id, str(exc), now)
        return "refused"
    stk.record_pushed(new_uow(), request_id, checkout, now)
    return "pushed"


def sweep(svc: Services, now: datetime) -> int:
    """Push requests whose job was lost; close prompts whose result never came."""
    pushed = 0
    for request_id in stk.due(svc.uow(), now):
        push(svc.uow, svc.stk, request_id, now)
        pushed += 1
    return pushed + stk.stale(svc.uow(), now - RESULT_WAIT, now)
