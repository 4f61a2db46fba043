"""USSD sessions in Redis: one round trip to load a hop's state (session, the phone's
rate-limit counter and resume marker, the caller's card), one to save it. Nothing lives
in the web process. Caller cards and why they are never stale: `runtime/caller_cards.py`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import cast

import redis

from core.config import UssdSettings
from runtime import caller_cards
from ussd.state import Caller, State

PREFIX = "ussd"


def session_digest(session_id: str) -> str:
    """Gateway session ids are untrusted text: keys use a fixed-length digest."""
    return hashlib.blake2b(session_id.encode("utf-8", "replace"), digest_size=12).hexdigest()


Span = tuple[int, int]  # where in a hop's text an input lies: [start, end)


def masked(text: str, secrets: list[Span]) -> str:
    """`text` with every PIN typed in it blanked out (`#`), its length kept."""
    for start, end in secrets:
        text = text[:start] + "#" * (end - start) + text[end:]
    return text


def fingerprint(secret: bytes, text: str, secrets: list[Span]) -> str:
    """A keyed digest of a hop's `text`, which holds everything typed this session:
    the PINs in it are blanked first (`secrets`), so nothing kept can give one back,
    whatever key is known."""
    return hashlib.blake2b(masked(text, secrets).encode("utf-8", "replace"),
                           key=secret[:64], digest_size=16).hexdigest()


@dataclass(frozen=True)
class LastHop:
    """The last hop answered: its text's length and keyed digest (PINs blanked), where
    the PINs lie in it, and our answer."""

    length: int
    digest: str
    answer: str
    secrets: list[Span]

    def same(self, secret: bytes, text: str) -> bool:
        return len(text) == self.length and \
            fingerprint(secret, text, self.secrets) == self.digest

    def extension(self, secret: bytes, text: str) -> str | None:
        """What was typed since this hop, when `text` is this hop's text with more
        typed after a `*`; None when it is not (some gateways send only the latest
        input, which is then the whole of what was typed)."""
        n = self.length
        if n and len(text) > n and text[n] == "*" and \
                fingerprint(secret, text[:n], self.secrets) == self.digest:
            return text[n + 1:]
        return None


@dataclass
class Loaded:
    """What one hop starts from."""

    state: State | None  # None: a new session
    last: LastHop | None
    hops_this_minute: int
    resume: State | None  # a dropped session this phone may continue
    card: Caller | None = None  # the caller as last read from the database, if kept
    generation: str = "0"  # the caller's generation and the cards' epoch, as read
    epoch: str = "0"  # with the card (a fill is refused once either moved)


class SessionStore:
    def __init__(self, client: redis.Redis, settings: UssdSettings, secret: bytes) -> None:
        self.client = client
        self.settings = settings
        self.secret = secret

    @staticmethod
    def session_key(sid: str) -> str:
        return f"{PREFIX}:s:{sid}"

    @staticmethod
    def resume_key(phone: str) -> str:
        return f"{PREFIX}:resume:{phone}"

    @staticmethod
    def rate_key(phone: str, minute: int) -> str:
        return f"{PREFIX}:rate:{phone}:{minute}"

    def load(self, sid: str, phone: str, minute: int) -> Loaded:
        """Session, rate counter, resume marker and the caller's card in one pipelined
        round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.mget(self.session_key(sid), self.resume_key(phone), caller_cards.card_key(phone),
                  caller_cards.generation_key(phone), caller_cards.EPOCH_KEY)
        rate = self.rate_key(phone, minute)
        pipe.incr(rate)
        pipe.expire(rate, 61)
        (raw, resume_raw, card_raw, generation, epoch), hops, _ = pipe.execute()
        state = last = None
        if raw:
            record = json.loads(raw)
            state = State.from_dict(record["state"])
            last = LastHop(record["length"], record["digest"], record["answer"],
                           [(int(a), int(b)) for a, b in record.get("secrets", [])])
        resume = State.from_json(resume_raw) if resume_raw else None
        epoch = caller_cards.text(epoch)
        card = None
        if card_raw:
            kept = json.loads(card_raw)
            if kept.get("epoch") == epoch:  # else an agent's name or number changed since
                card = Caller(**kept["caller"])
        return Loaded(state, last, int(hops), resume, card, caller_cards.text(generation),
                      epoch)

    def save(self, sid: str, state: State, text: str, answer: str,
             resume: State | None, secrets: list[Span],
             fill: tuple[Caller, Loaded] | None = None) -> None:
        """The session with this hop's text and answer (for resent hops), and the
        phone's resume marker set or cleared, in one round trip. `secrets` says where
        the PINs lie in `text`: they are blanked before the digest is taken. `fill` is
        a caller read from the database this hop, kept as the phone's card unless the
        member changed since the hop loaded (`runtime/caller_cards.py`)."""
        record = json.dumps({"state": state.to_dict(), "length": len(text),
                             "digest": fingerprint(self.secret, text, secrets),
                             "answer": answer, "secrets": secrets}, separators=(",", ":"))
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.session_key(sid), record, ex=self.settings.session_ttl_seconds)
        if resume is not None:
            pipe.set(self.resume_key(state.phone), resume.to_json(),
                     ex=self.settings.resume_window_seconds)
        else:
            pipe.delete(self.resume_key(state.phone))
        if fill is not None:
            caller, loaded = fill
            card = json.dumps({"epoch": loaded.epoch, "caller": caller.to_dict()},
                              separators=(",", ":"))
            caller_cards.fill(pipe, state.phone, card, loaded.generation, loaded.epoch)
        pipe.execute()

    def state_of(self, sid: str) -> State | None:
        raw = cast(bytes | None, self.client.get(self.session_key(sid)))
        return State.from_dict(json.loads(raw)["state"]) if raw else None

    def mark_dropped(self, phone: str, resume: State) -> None:
        self.client.set(self.resume_key(phone), resume.to_json(),
                        ex=self.settings.resume_window_seconds)

    def clear_resume(self, phone: str) -> None:
        self.client.delete(self.resume_key(phone))
