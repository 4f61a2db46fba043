"""The fault harness's synthetic village, played through the public hooks only: agents
register members by USSD, members accept the terms and set a PIN, lenders top up by
paybill, borrowers ask for loans by USSD, lenders pledge (`LEND`) and confirm (`YES`)
by SMS, borrowers repay by paybill, and delivery reports come back for what was sent.

`Hooks` posts each callback as the gateways do and records every answer in the
`Tally`; a 5xx is retried as the gateway would (bounded), so a fault delays a message
but never drops it on our side. The village keeps only what a person would know: their
phone, their PIN, what the screen said and what SMS they got.
"""
from __future__ import annotations

import itertools
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.fault_gateway import FakeGateway
from mpesa.fake import FakeDaraja

PIN = "2580"
TIMEOUT = 15.0  # seconds: longer than any gateway waits for us
RETRY_FOR = 30.0  # seconds a gateway keeps retrying a callback we answered 5xx
FIRST = ("Amina", "Baraka", "Chebet", "Daudi", "Esther", "Faraji", "Grace", "Hamisi",
         "Imani", "Juma", "Kendi", "Lydia", "Musa", "Njeri", "Otieno", "Pendo", "Rehema",
         "Salim", "Tumaini", "Wanjiru", "Zawadi")
LAST = ("Kamau", "Otieno", "Wanjiku", "Mwangi", "Achieng", "Njoroge", "Kiptoo", "Mutua",
        "Chege", "Onyango", "Wafula", "Kariuki")


@dataclass
class Tally:
    """What the harness sent and what it got back."""

    hops: int = 0
    sms_in: int = 0
    reports: int = 0
    payments: int = 0  # paybill payments M-Pesa took from a customer
    payments_refused: int = 0  # refused at validation: no money taken
    invalid: list[str] = field(default_factory=list)  # USSD answers that were not CON/END
    cut: list[float] = field(default_factory=list)  # USSD hops with no HTTP answer at all, when
    server_errors: Counter[str] = field(default_factory=Counter)  # "hook status" -> count
    apologies: Counter[str] = field(default_factory=Counter)  # USSD END saying sorry
    gave_up: Counter[str] = field(default_factory=Counter)  # callbacks never answered 2xx
    replays: int = 0  # USSD hops sent again (a duplicated callback)
    replays_same: int = 0  # ... that got the same answer again
    registered: int = 0
    loans_asked: int = 0
    pledges: int = 0
    confirmations: int = 0
    repayments: int = 0
    reminder_runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


APOLOGIES = {"unavailable": "try again", "error": "went wrong", "limited": "too many"}


class Hooks:
    """Callbacks to our app, as Africa's Talking and M-Pesa send them."""

    def __init__(self, base_url: str, key: str, tally: Tally, daraja: FakeDaraja) -> None:
        self.base_url, self.key, self.tally, self.daraja = base_url, key, tally, daraja
        self.recent_sms: list[dict[str, str]] = []
        self.last_hops: dict[str, dict[str, str]] = {}  # session -> its latest hop
        self.recent_receipts: list[str] = []  # paybill TransIDs
        self.unconfirmed: list[str] = []  # TransIDs whose confirmation never got a 200
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _post(self, hook: str, form: dict[str, str]) -> requests.Response | None:
        try:
            return requests.post(f"{self.base_url}{hook}?key={self.key}", data=form,
                                 timeout=TIMEOUT)
        except requests.RequestException:
            return None

    def ussd(self, session: str, phone: str, typed: str) -> str:
        """One hop; the answer, or "" when it was not CON/END (counted)."""
        form = {"sessionId": session, "serviceCode": "*384*123#", "phoneNumber": phone,
                "networkCode": "63902", "text": typed}
        response = self._post("/hooks/ussd", form)
        self.tally.add("hops")
        status = response.status_code if response is not None else 0
        body = response.text if response is not None else ""
        if status >= 500:
            with self.tally.lock:
                self.tally.server_errors[f"ussd {status}"] += 1
        if status == 0:  # the connection closed with no answer: judged against the faults
            with self.tally.lock:
                self.tally.cut.append(time.monotonic())
            return ""
        if status != 200 or not body.startswith(("CON ", "END ")):
            with self.tally.lock:
                self.tally.invalid.append(f"{status} {body[:60]!r}")
            return ""
        if body.startswith("END "):
            for kind, words in APOLOGIES.items():
                if words in body:
                    with self.tally.lock:
                        self.tally.apologies[kind] += 1
        with self._lock:
            self.last_hops.pop(session, None)
            self.last_hops[session] = {**form, "answer": body}
            while len(self.last_hops) > 20:
                self.last_hops.pop(next(iter(self.last_hops)))
        return body

    def latest_hops(self, n: int) -> list[dict[str, str]]:
        """The latest hop of each of the `n` sessions last heard from."""
        with self._lock:
            return list(self.last_hops.values())[-n:]

    def replay_hop(self, hop: dict[str, str]) -> None:
        """The latest hop of a session, sent again as a gateway retries it: it must get a
        CON/END again, the same one while the session lasts in Redis."""
        answer = self.ussd(hop["sessionId"], hop["phoneNumber"], hop["text"])
        self.tally.add("replays")
        if answer == hop["answer"]:
            self.tally.add("replays_same")
        else:
            print(f"  a replayed hop got another answer: {hop['answer'][:50]!r} then "
                  f"{answer[:50]!r}")

    def sms(self, phone: str, body: str, sms_id: str | None = None) -> None:
        """An incoming SMS, retried while we answer 5xx, as AT does."""
        form = {"from": phone, "to": "22384", "text": body,
                "id": sms_id or f"ATsms_{next(self._ids)}", "date": "2026-12-01 10:00:00",
                "linkId": "", "networkCode": "63902"}
        self.tally.add("sms_in")
        if self._until_taken("/hooks/sms", form, "sms"):
            with self._lock:
                self.recent_sms = [*self.recent_sms[-19:], form]

    def report(self, message_id: str, phone: str, status: str) -> None:
        form = {"id": message_id, "status": status, "phoneNumber": phone,
                "networkCode": "63902", "failureReason": "", "retryCount": "0"}
        self.tally.add("reports")
        self._until_taken("/hooks/sms/delivery", form, "delivery")

    def _until_taken(self, hook: str, form: dict[str, str], name: str) -> bool:
        deadline = time.monotonic() + RETRY_FOR
        while True:
            response = self._post(hook, form)
            status = response.status_code if response is not None else 0
            if 200 <= status < 300:
                return True
            if status >= 500 or status == 0:
                with self.tally.lock:
                    self.tally.server_errors[f"{name} {status}"] += 1
            if status == 429 or 400 <= status < 500 or time.monotonic() > deadline:
                with self.tally.lock:
                    self.tally.gave_up[f"{name} {status}"] += 1
                return False
            time.sleep(0.5)

    def pay_bill(self, phone: str, shillings: int, account: str) -> None:
        """A customer pays our paybill: M-Pesa's validation, then its confirmation. A
        confirmation we did not take with a 200 is sent again later (`confirm_again`)."""
        outcome = self.daraja.pay_bill(phone, shillings, account=account, name="Village Member")
        if not outcome["accepted"]:
            self.tally.add("payments_refused")
            return
        self.tally.add("payments")
        with self._lock:
            self.recent_receipts = [*self.recent_receipts[-19:], outcome["trans_id"]]
            if outcome.get("confirmation_status") != 200:
                self.unconfirmed.append(outcome["trans_id"])
                with self.tally.lock:
                    self.tally.server_errors[f"c2b {outcome.get('confirmation_status')}"] += 1

    def confirm_again(self) -> int:
        """Send again each confirmation that has not had a 200; returns how many are left."""
        with self._lock:
            waiting, self.unconfirmed = self.unconfirmed, []
        left = []
        for trans_id in waiting:
            if self.daraja.replay_confirmation(trans_id).status != 200:
                left.append(trans_id)
        with self._lock:
            self.unconfirmed.extend(left)
            return len(self.unconfirmed)


class Dial:
    """One USSD session of one phone: `text` accumulates as the gateway sends it."""

    _sessions = itertools.count(1)

    def __init__(self, hooks: Hooks, phone: str) -> None:
        self.hooks, self.phone = hooks, phone
        self.session, self.text = f"FLT_{next(self._sessions)}_{random.randrange(10**6)}", ""

    def start(self) -> str:
        screen = self.hooks.ussd(self.session, self.phone, "")
        if "was cut off" in screen:  # a dropped session: start again
            screen = self.press("2")
        return screen

    def press(self, typed: str) -> str:
        self.text = typed if not self.text else f"{self.text}*{typed}"
        return self.hooks.ussd(self.session, self.phone, self.text)


def steps(dial: Dial, screen: str, plan: list[tuple[str, str]]) -> str:
    """Type each input when the screen shows its expected words; "" when it does not
    (the flow is dropped, as a person would hang up)."""
    for expected, typed in plan:
        if expected not in screen:
            return ""
        screen = dial.press(typed)
    return screen


@dataclass
class Village:
    """The people, and what each knows. Shared by the actor threads under a lock."""

    hooks: Hooks
    gateway: FakeGateway
    db: Engine
    agents: list[str]
    rng: random.Random
    members: list[str] = field(default_factory=list)  # onboarded: terms accepted, PIN set
    lenders: list[str] = field(default_factory=list)  # topped up
    borrowed: set[str] = field(default_factory=set)  # asked for a loan already
    codes_sent: set[tuple[str, str]] = field(default_factory=set)  # (lender, code) confirmed
    reported: set[str] = field(default_factory=set)  # message ids reported delivered
    lock: threading.Lock = field(default_factory=threading.Lock)
    _phones: Any = field(default_factory=lambda: itertools.count(1))

    # ---------------------------------------------------------------- USSD

    def register(self) -> bool:
        """An agent registers a new neighbour, who then accepts the terms and sets a PIN."""
        with self.lock:
            n = next(self._phones)
            agent = self.agents[n % len(self.agents)]
        phone = f"+25471{n:07d}"
        name = f"{FIRST[n % len(FIRST)]} {LAST[(n // len(FIRST)) % len(LAST)]}"
        dial = Dial(self.hooks, agent)
        screen = dial.start()
        if "Terms:" in screen:
            screen = dial.press("1")
        done = steps(dial, screen, [
            ("Agent services", "1"), ("Register a member", "1"), ("phone number", f"0{phone[4:]}"),
            ("full name", name), ("national ID", f"{30_000_000 + n}"),
            ("Village or group", "Harambee Village"), ("language", "1"), ("Save", "1"),
            ("PIN", PIN)])
        if "is registered" not in done:
            return False
        self.hooks.tally.add("registered")
        own = Dial(self.hooks, phone)
        accepted = steps(own, own.start(), [("Terms:", "1"), ("PIN", PIN), ("PIN", PIN)])
        if "PIN is set" not in accepted:
            return False
        with self.lock:
            self.members.append(phone)
        return True

    def ask_loan(self) -> bool:
        with self.lock:
            free = [p for p in self.members if p not in self.borrowed and p not in self.lenders]
            if not free:
                return False
            phone = self.rng.choice(free)
            self.borrowed.add(phone)
            amount = self.rng.choice((500, 800, 1000, 1500, 2000))
        dial = Dial(self.hooks, phone)
        done = steps(dial, dial.start(), [
            ("Request a loan", "1"), ("Amount to borrow", str(amount)), ("loan for", "1"),
            ("Repay over", "1"), ("Accept", "1"), ("PIN", PIN)])
        found = re.search(r"Loan (L\d+) is open", done)
        if found is None:
            return False
        self.hooks.tally.add("loans_asked")
        return True

    # ---------------------------------------------------------------- money and SMS

    def top_up(self) -> bool:
        with self.lock:
            candidates = [p for p in self.members if p not in self.borrowed]
            if not candidates:
                return False
            phone = self.rng.choice(candidates)
            if phone not in self.lenders:
                self.lenders.append(phone)
        self.hooks.pay_bill(phone, self.rng.choice((2000, 3000, 5000)), account=phone)
        return True

    def pledge(self) -> bool:
        """A lender pledges to a loan still open to lenders (the loans a lender sees
        listed under Lend): all that is left of it, or half of it."""
        with self.db.connect() as conn:
            open_loans = conn.execute(text(
                "SELECT number, amount / 100, (amount - pledged) / 100 FROM loans "
                "WHERE status = 'listed' AND pledged < amount")).all()
        with self.lock:
            if not self.lenders or not open_loans:
                return False
            lender = self.rng.choice(self.lenders)
            number, amount, left = self.rng.choice(open_loans)
            whole = self.rng.random() < 0.5  # all that is left, or half the loan
        share = int(left) if whole else min(int(left), max(50, int(amount) // 2))
        seen = len(self.gateway.texts_to(lender))
        self.hooks.sms(lender, f"LEND {number} {share}")
        self.hooks.tally.add("pledges")
        self.answer_code(lender, seen)
        return True

    def answer_code(self, lender: str, seen: int, wait: float = 5.0) -> None:
        """The lender reads the SMS that comes back and, if it holds a code, answers YES
        (a code that comes later is answered by `confirm`)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if len(self.gateway.texts_to(lender)) > seen:
                self.confirm_codes(lender)
                return
            time.sleep(0.2)

    def confirm(self) -> bool:
        """Each lender answers `YES <code>` to every pledge code they got."""
        with self.lock:
            lenders = list(self.lenders)
        return any([self.confirm_codes(lender) for lender in lenders])

    def confirm_codes(self, lender: str) -> bool:
        confirmed = False
        for body in self.gateway.texts_to(lender):
            found = re.search(r"reply YES (\d+)", body)
            if found is None:
                continue
            code = found.group(1)
            with self.lock:
                if (lender, code) in self.codes_sent:
                    continue
                self.codes_sent.add((lender, code))
            self.hooks.sms(lender, f"YES {code}")
            self.hooks.tally.add("confirmations")
            confirmed = True
        return confirmed

    def repay(self) -> bool:
        """A borrower pays part of a disbursed loan by paybill, the loan number as account."""
        with self.db.connect() as conn:
            rows = conn.execute(text(
                "SELECT l.number, m.phone FROM loans l JOIN members m ON m.id = l.borrower_id "
                "WHERE l.status IN ('disbursed', 'repaying', 'in_arrears')")).all()
        if not rows:
            return False
        number, phone = self.rng.choice(rows)
        self.hooks.pay_bill(phone, self.rng.choice((100, 250, 400, 800)), account=number)
        self.hooks.tally.add("repayments")
        return True

    def chatter(self) -> bool:
        with self.lock:
            if not self.members:
                return False
            phone = self.rng.choice(self.members)
        self.hooks.sms(phone, self.rng.choice(("BAL", "LOANS", "HELP", "STATUS")))
        return True

    def reports(self, reorder: bool = False) -> int:
        """Delivery reports for what the gateway took: `Buffered` then `Success`, or in
        the wrong order when `reorder`."""
        sent = 0
        for taken in self.gateway.snapshot()[-200:]:
            with self.lock:
                if taken.message_id in self.reported:
                    continue
                self.reported.add(taken.message_id)
            order = ("Success", "Buffered") if reorder else ("Buffered", "Success")
            for status in order:
                self.hooks.report(taken.message_id, taken.phone, status)
            sent += 1
            if sent >= 10:
                break
        return sent
