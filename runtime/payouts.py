"""Payout gateways: money leaving Harambee to a phone (disbursements, withdrawals).

`console` pays nobody: it logs and answers with a reference derived from our key, so
a retry from any process gets the same reference. Core states what a gateway must do
(`core.payouts.PayoutGateway`); the composition root picks one from settings.
"""
from __future__ import annotations

import hashlib
import logging

from core.payouts import PayoutGateway
from core.phones import masked

log = logging.getLogger(__name__)


class ConsolePayouts:
    """Pays nobody: logs and returns a reference derived from the key."""

    provider = "console"

    def pay(self, *, key: str, phone: str, amount: int, currency: str) -> str:
        reference = "CP" + hashlib.sha256(key.encode()).hexdigest()[:12].upper()
        log.info("payout %s %s %s to %s (%s)", key, amount, currency, masked(phone), reference)
        return reference


def payout_gateway(name: str) -> PayoutGateway:
    """The configured payout gateway (`gateway.payout`)."""
    if name == "console":
        return ConsolePayouts()
    raise ValueError(f"unknown payout gateway {name!r}")
