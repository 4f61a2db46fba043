"""M-Pesa through Safaricom's Daraja API as the gateways core asks for: payouts (B2C,
with Transaction Status and Account Balance to settle the unsure ones) and "pay now"
prompts (STK push). Each call goes through `mpesa.daraja.Daraja`; results come back to
the hooks in `mpesa/hooks.py`, at the URLs built here.

`console` stands in when no rail is configured: it logs, and a prompt's result never
comes (a test or the simulator posts it).
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from core.config import Settings
from core.payouts import NeverReceived, Order, Outcome, Refused, Taken, Unsure
from core.phones import masked
from core.stk import Prompt, PromptRefused
from mpesa.daraja import Daraja, DarajaError

log = logging.getLogger(__name__)

PROVIDER = "mpesa"


@dataclass(frozen=True)
class CallbackUrls:
    """Where Daraja posts its results: our public base URL, then `/hooks/<what>/<token>/`.
    The paths avoid the words Daraja refuses in callback URLs (mpesa, safaricom...)."""

    base: str
    token: str

    def url(self, door: str, what: str) -> str:
        return f"{self.base.rstrip('/')}/hooks/{door}/{self.token}/{what}"

    @property
    def c2b_validation(self) -> str:
        return self.url("c2b", "validation")

    @property
    def c2b_confirmation(self) -> str:
        return self.url("c2b", "confirmation")

    @property
    def stk(self) -> str:
        return f"{self.base.rstrip('/')}/hooks/stk/{self.token}"

    @property
    def b2c_result(self) -> str:
        return self.url("b2c", "result")

    @property
    def b2c_timeout(self) -> str:
        return self.url("b2c", "timeout")

    def status_result(self, originator: str) -> str:
        """Where the Transaction Status of payout `originator` is answered: the answer
        itself may not name it (a transaction never received)."""
        return self.url("b2c", f"status/{originator}")

    @property
    def balance_result(self) -> str:
        return self.url("b2c", "balance")

    @classmethod
    def of(cls, settings: Settings) -> CallbackUrls:
        return cls(settings.mpesa.callback_base_url, settings.mpesa.callback_token)


def daraja_client(settings: Settings) -> Daraja:
    return Daraja(settings.mpesa, minor_scale=settings.app.minor_scale)


class DarajaPayouts:
    """B2C payouts, keyed by the payout's originator id: a second request for one
    payout is refused by Daraja as a duplicate, so nothing is paid twice."""

    provider = PROVIDER

    def __init__(self, client: Daraja, urls: CallbackUrls, remarks: str = "Harambee") -> None:
        self.client = client
        self.urls = urls
        self.remarks = remarks

    def send(self, order: Order) -> Taken | Outcome:
        try:
            accepted = self.client.b2c(
                originator_conversation_id=order.originator, phone=order.phone,
                amount=order.amount, remarks=f"{self.remarks} {order.purpose}",
                result_url=self.urls.b2c_result, timeout_url=self.urls.b2c_timeout)
        except ValueError as exc:  # refused before sending: it can never be paid so
            raise Refused(str(exc)) from None
        except DarajaError as exc:
            if exc.duplicate or exc.outcome_unknown or exc.transient:
                raise Unsure(exc.detail) from None
            raise Refused(exc.detail, exc.code) from None
        return Taken(accepted.conversation_id)

    def ask(self, order: Order) -> Outcome | NeverReceived | None:
        """Transaction Status by our originator id; its answer comes by callback."""
        try:
            self.client.transaction_status(
                originator_conversation_id=order.originator,
                result_url=self.urls.status_result(order.originator),
                timeout_url=self.urls.status_result(order.originator))
        except (DarajaError, ValueError) as exc:
            raise Unsure(str(exc)) from None
        return None

    def ask_float(self) -> None:
        try:
            self.client.account_balance(result_url=self.urls.balance_result,
                                        timeout_url=self.urls.balance_result)
        except (DarajaError, ValueError) as exc:
            raise Unsure(str(exc)) from None


class DarajaStk:
    """STK push: the prompt on the borrower's phone; its result comes to /hooks/stk."""

    provider = PROVIDER

    def __init__(self, client: Daraja, urls: CallbackUrls) -> None:
        self.client = client
        self.urls = urls

    def push(self, prompt: Prompt) -> str:
        try:
            accepted = self.client.stk_push(
                phone=prompt.phone, amount=prompt.amount, account_reference=prompt.account,
                description=f"Pay {prompt.account}"[:13], callback_url=self.urls.stk)
        except (DarajaError, ValueError) as exc:
            raise PromptRefused(str(exc)) from None
        return accepted.checkout_request_id


class ConsoleStk:
    """Prompts nobody: logs, and answers with an id whose result a test or the
    simulator may post."""

    provider = PROVIDER

    def push(self, prompt: Prompt) -> str:
        checkout = f"ws_CO_console_{uuid.uuid4().hex[:16]}"
        log.info("STK prompt %s: %s to %s for %s", checkout, prompt.amount,
                 masked(prompt.phone), prompt.account)
        return checkout
