"""M-Pesa on the simulated phones: Pay bill, the "pay now" (STK) prompt, and the M-Pesa
SMS a phone gets when money arrives or leaves.

With the Daraja rail (the demo), money moves through the fake Daraja's controls, which
call our Daraja hooks back as Safaricom would; with the console rail, Pay bill posts
Daraja's own validation and confirmation bodies to our C2B hooks directly. Either way
the simulator never moves real money: it refuses a Daraja that is not on this machine.
"""
from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from sqlalchemy import select

from core.models import Member, Payout, PayoutStatus
from runtime.mpesa import CallbackUrls
from web.simulator.network import PREFIX, Network, Refused

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FAKE_TIMEOUT = 20  # seconds: a Pay bill waits for our own validation and confirmation
SENDER = "MPESA"


@dataclass
class Handset:
    """What the M-Pesa menu shows after an action."""

    ok: bool
    text: str


class Mpesa:
    def __init__(self, network: Network) -> None:
        self.net = network
        self.svc = network.svc
        self.settings = network.settings

    @property
    def fake_url(self) -> str | None:
        """The fake Daraja's base URL with the Daraja rail; None with the console rail."""
        if self.settings.gateway.payout != "daraja":
            return None
        base = self.settings.mpesa.base_url.rstrip("/")
        if urlsplit(base).hostname not in LOOPBACK:
            raise Refused("the simulator moves no real money: M-Pesa must be a fake Daraja "
                          "on this machine (mpesa.base_url on 127.0.0.1)")
        return base

    # --- Pay bill --------------------------------------------------------------------

    def pay_bill(self, phone: str, business: str, account: str, amount: str,
                 pin: str) -> Handset:
        ours = {self.settings.payments.paybill, self.settings.mpesa.shortcode}
        if business.strip() not in ours:
            return Handset(False, f"Business number {business.strip()[:10]} is not known.")
        account = account.strip().upper()
        if not account or len(account) > 20:
            return Handset(False, "Enter an account number.")
        try:
            shillings = int(amount.strip().replace(",", ""))
        except ValueError:
            return Handset(False, "Enter the amount in whole shillings.")
        if not 1 <= shillings <= self.settings.mpesa.max_amount:
            return Handset(False, f"Amount must be 1 to {self.settings.mpesa.max_amount:,}.")
        if not (pin.isdigit() and len(pin) == 4):
            return Handset(False, "Enter your 4-digit M-Pesa PIN.")
        fake = self.fake_url
        if fake is not None:
            trans_id, accepted, detail, ms = self._pay_through_fake(fake, phone, shillings,
                                                                    account)
        else:
            trans_id, accepted, detail, ms = self._pay_directly(phone, shillings, account)
        self.net.note("mpesa", phone, f"Pay bill {business} account {account} "
                      f"Ksh {shillings:,}: {detail}", ms)
        when = self._when()
        if not accepted:
            text = (f"{trans_id} Failed. Ksh{shillings:,}.00 was not sent to HARAMBEE for "
                    f"account {account}. Nothing was taken.")
            self._sms(phone, text)
            return Handset(False, "Failed: the business refused the account.")
        self._sms(phone, f"{trans_id} Confirmed. Ksh{shillings:,}.00 sent to HARAMBEE for "
                         f"account {account} on {when}.")
        return Handset(True, f"Paid Ksh{shillings:,}.00 to account {account}.")

    def _pay_through_fake(self, fake: str, phone: str, shillings: int,
                          account: str) -> tuple[str, bool, str, float]:
        name = self._name(phone)
        response = requests.post(f"{fake}/fake/c2b/pay", timeout=FAKE_TIMEOUT, json={
            "phone": phone.lstrip("+"), "amount": shillings, "account": account,
            "name": name, "msisdn": "masked"})
        ms = round(response.elapsed.total_seconds() * 1000, 1)
        outcome = response.json()
        detail = (f"fake Daraja {outcome.get('trans_id')}: validation "
                  f"{outcome.get('result_code')}, confirmation "
                  f"{outcome.get('confirmation_status')}")
        return str(outcome.get("trans_id", "")), bool(outcome.get("accepted")), detail, ms

    def _pay_directly(self, phone: str, shillings: int,
                      account: str) -> tuple[str, bool, str, float]:
        """Daraja's own bodies to our C2B hooks: validation, then confirmation."""
        urls = CallbackUrls.of(self.settings)
        trans_id = "S" + "".join(secrets.choice(string.ascii_uppercase + string.digits)
                                 for _ in range(9))
        first, _, last = self._name(phone).partition(" ")
        local = self.svc.now().astimezone(self.settings.zone)
        body = {"TransactionType": "Pay Bill", "TransID": trans_id,
                "TransTime": local.strftime("%Y%m%d%H%M%S"), "TransAmount": f"{shillings}.00",
                "BusinessShortCode": self.settings.mpesa.shortcode,
                "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "",
                "ThirdPartyTransID": "", "MSISDN": phone.lstrip("+"), "FirstName": first,
                "MiddleName": "", "LastName": last}
        path = urlsplit(urls.c2b_validation).path
        status, answer, ms1 = self.net.hook(path, body=body, keyed=False)
        code = _result_code(answer) if status == 200 else str(status)
        if code != "0":
            return trans_id, False, f"validation {code}", ms1
        path = urlsplit(urls.c2b_confirmation).path
        status, _, ms2 = self.net.hook(path, body=body, keyed=False)
        return trans_id, status == 200, f"validation 0, confirmation {status}", ms1 + ms2

    # --- the "pay now" prompt ----------------------------------------------------------

    def prompts(self) -> dict[str, list[dict[str, Any]]]:
        """STK prompts waiting, by phone (E.164), in one call (the Daraja rail only)."""
        fake = self.fake_url
        if fake is None:
            return {}
        try:
            waiting = requests.get(f"{fake}/fake/stk/pending", timeout=3).json()
        except (requests.RequestException, ValueError):
            return {}
        by_phone: dict[str, list[dict[str, Any]]] = {}
        for p in waiting if isinstance(waiting, list) else []:
            by_phone.setdefault(f"+{p['phone']}", []).append({
                "id": p["checkout_request_id"], "amount": p["amount"],
                "account": p["account_reference"], "shortcode": p["shortcode"]})
        return by_phone

    def answer_prompt(self, phone: str, checkout_id: str, accept: bool, pin: str) -> Handset:
        fake = self.fake_url
        if fake is None:
            raise Refused("prompts come only with the Daraja rail")
        if checkout_id not in {p["id"] for p in self.prompts().get(phone, [])}:
            raise Refused("no such prompt on this phone")
        if accept and not (pin.isdigit() and len(pin) == 4):
            return Handset(False, "Enter your 4-digit M-Pesa PIN.")
        action = "accept" if accept else "cancel"
        response = requests.post(f"{fake}/fake/stk/{checkout_id}/{action}",
                                 json={"pin": pin} if accept else {}, timeout=FAKE_TIMEOUT)
        ms = round(response.elapsed.total_seconds() * 1000, 1)
        prompt = response.json()
        self.net.note("mpesa", phone, f"STK prompt {action}ed: {prompt.get('state')} "
                      f"(result {prompt.get('result_code')})", ms)
        if prompt.get("state") == "paid":
            self._sms(phone, f"{prompt.get('receipt')} Confirmed. "
                             f"Ksh{int(prompt['amount']):,}.00 sent to HARAMBEE for account "
                             f"{prompt.get('account_reference')} on {self._when()}.")
            return Handset(True, f"Paid Ksh{int(prompt['amount']):,}.00.")
        return Handset(not accept, "Cancelled." if not accept else "Failed.")

    def callbacks_seen(self) -> None:
        """Log each callback the fake Daraja made to our hooks since the last look."""
        fake = self.fake_url
        if fake is None:
            return
        redis = self.net.redis
        after = int(cast(bytes | None, redis.get(PREFIX + "fake:after")) or 0)
        try:
            made = requests.get(f"{fake}/fake/deliveries", params={"after": after},
                                timeout=3).json()
        except (requests.RequestException, ValueError):
            return
        for delivery in made if isinstance(made, list) else []:
            if redis.sadd(PREFIX + "fake:noted", delivery["id"]):
                outcome = delivery["status"] or delivery["error"] or "no answer"
                self.net.note("mpesa", "", f"Daraja callback {delivery['kind']} -> {outcome}",
                              delivery.get("ms", 0))
            redis.set(PREFIX + "fake:after", max(after, int(delivery["id"])))

    # --- money arriving ------------------------------------------------------------------

    def payouts_arrived(self, phones: list[str]) -> None:
        """An M-Pesa SMS for each payout paid to a phone on the page since the
        simulator first looked (the demo's history stays out of the inboxes)."""
        with self.svc.uow() as uow:
            latest = uow.session.scalar(select(Payout.id).order_by(Payout.id.desc()).limit(1))
            self.net.redis.set(PREFIX + "b2c:after", latest or 0, nx=True)
            after = int(cast(bytes | None, self.net.redis.get(PREFIX + "b2c:after")) or 0)
            paid = uow.session.execute(
                select(Payout.id, Payout.phone, Payout.amount, Payout.receipt,
                       Payout.settled_at)
                .where(Payout.id > after, Payout.status == PayoutStatus.PAID,
                       Payout.phone.in_(phones))).all()
        for payout_id, phone, amount, receipt, settled_at in paid:
            if not self.net.redis.sadd(PREFIX + "b2c:told", payout_id):
                continue
            scale = self.settings.app.minor_scale
            when = self._when(settled_at)
            self._sms(phone, f"{receipt} Confirmed. You have received "
                             f"Ksh{amount // scale:,}.{amount % scale:02d} from HARAMBEE "
                             f"{self.settings.mpesa.b2c_party} on {when}.")
            self.net.note("mpesa", phone, f"B2C payout {receipt} arrived", 0)

    # --- helpers -------------------------------------------------------------------------

    def _sms(self, phone: str, text: str) -> None:
        gateway = self.svc.sms
        put = getattr(gateway, "put", None)
        if put is not None:  # the simulator's gateway holds the phones' inboxes
            put(phone, text, SENDER)

    def _name(self, phone: str) -> str:
        with self.svc.uow() as uow:
            name = uow.session.scalar(select(Member.name).where(Member.phone == phone))
        return name or "M-Pesa Customer"

    def _when(self, moment: datetime | None = None) -> str:
        moment = moment or self.svc.now()
        if moment.tzinfo is None:  # SQLite gives back naive UTC
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(self.settings.zone)
        return f"{local.day}/{local.month}/{local:%y} at {local:%I:%M %p}".replace(" at 0",
                                                                                    " at ")


def _result_code(answer: str) -> str:
    try:
        return str(json.loads(answer).get("ResultCode", ""))
    except (ValueError, AttributeError):
        return "?"
