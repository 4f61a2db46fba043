"""Payout gateways: money leaving Harambee for a phone (disbursements, withdrawals).

`console` pays nobody: it answers at once that it paid, with a receipt derived from the
order, so a retry from any process gets the same receipt. Core states what a gateway
must do (`core.payouts.PayoutGateway`); the composition root picks one from settings.
"""
from __future__ import annotations

import hashlib
import logging

from core.config import Settings
from core.payouts import NeverReceived, Order, Outcome, PayoutGateway, Taken
from core.phones import masked
from core.stk import StkGateway
from mpesa.daraja import Daraja
from runtime.mpesa import CallbackUrls, ConsoleStk, DarajaPayouts, DarajaStk

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


def payout_gateway(settings: Settings, daraja: Daraja | None) -> PayoutGateway:
    """The configured payout gateway (`gateway.payout`: console or daraja)."""
    if settings.gateway.payout == "daraja":
        assert daraja is not None
        return DarajaPayouts(daraja, CallbackUrls.of(settings))
    return ConsolePayouts()


def stk_gateway(settings: Settings, daraja: Daraja | None) -> StkGateway:
    """The gateway for "pay now" prompts: Daraja's STK push with the daraja rail."""
    if settings.gateway.payout == "daraja":
        assert daraja is not None
        return DarajaStk(daraja, CallbackUrls.of(settings))
    return ConsoleStk()
