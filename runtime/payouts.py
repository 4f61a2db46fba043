"""Payout gateways: money leaving Harambee for a phone (disbursements, withdrawals).

`console` pays nobody: it answers at once that it paid, with a receipt derived from the
order, so a retry from any process gets the same receipt. Core states what a gateway
must do (`core.payouts.PayoutGateway`); the composition root picks one from settings.
"""
from __future__ import annotations

import hashlib
import logging

from core.payouts import NeverReceived, Order, Outcome, PayoutGateway, Taken
from core.phones import masked

log = logging.getLogger(__name__)


class ConsolePayouts:
    """Pays nobody: logs the order and says it was paid."""

    provider = "console"

    def send(self, order: Order) -> Taken | Outcome:
        receipt = self._receipt(order)
        log.info("payout %s: %s %s to %s (%s)", order.originator, order.amount,
                 order.currency, masked(order.phone), receipt)
        return Outcome(paid=True, receipt=receipt)

    def ask(self, order: Order) -> Outcome | NeverReceived | None:
        return Outcome(paid=True, receipt=self._receipt(order))

    def ask_float(self) -> None:
        """A console has no float to report."""

    @staticmethod
    def _receipt(order: Order) -> str:
        return "CP" + hashlib.sha256(order.originator.encode()).hexdigest()[:8].upper()


def payout_gateway(name: str) -> PayoutGateway:
    """The configured payout gateway (`gateway.payout`)."""
    if name == "console":
        return ConsolePayouts()
    raise ValueError(f"unknown payout gateway {name!r}")
