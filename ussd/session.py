"""USSD sessions in Redis: one round trip to load a hop's state (session, the phone's
rate-limit counter and resume marker), one to save it. Nothing lives in the web process.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import cast

import redis

from core.config import UssdSettings
from ussd.state import State

PREFIX = "ussd"


def session_digest(session_id: str) -> str:
    """Gateway session ids are untrusted text: keys use a fixed-length digest."""
    return hashlib.blake2b(session_id.encode("utf-8", "replace"), digest_size=12).hexdigest()


def fingerprint(secret: bytes, text: str) -> str:
    """A keyed digest of a hop's `text`: the text holds every PIN typed this session,
    so only this and its length are stored."""
    return hashlib.blake2b(text.encode("utf-8", "replace"), key=secret[:64],
                           digest_size=16).hexdigest()


@dataclass(frozen=True)
class LastHop:
    """The last hop answered: its text's length and keyed digest, and our answer."""

    length: int
    digest: str
    answer: str

    def same(self, secret: bytes, text: str) -> bool:
        return len(text) == self.length and fingerprint(secret, text) == self.digest

    def typed_since(self, secret: bytes, text: str) -> str:
        """What was typed since this hop: the rest of a text that extends this one
        after a `*`, or the whole text when it does not (some gateways send only the
        latest input)."""
        n = self.length
        if n and len(text) > n and text[n] == "*" and fingerprint(secret, text[:n]) == \
                self.digest:
            return text[n + 1:]
        return text


@dataclass
class Loaded:
    """What one hop starts from."""

    state: State | None  # None: a new session
    last: LastHop | None
    hops_this_minute: int
    resume: State | None  # a dropped session this phone may continue


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
        """Session, rate counter and resume marker in one pipelined round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.session_key(sid))
        pipe.get(self.resume_key(phone))
        rate = self.rate_key(phone, minute)
        pipe.incr(rate)
        pipe.expire(rate, 61)
        raw, resume_raw, hops, _ = pipe.execute()
        state = last = None
        if raw:
            record = json.loads(raw)
            state = State.from_dict(record["state"])
            last = LastHop(record["length"], record["digest"], record["answer"])
        resume = State.from_json(resume_raw) if resume_raw else None
        return Loaded(state, last, int(hops), resume)

    def save(self, sid: str, state: State, text: str, answer: str,
             resume: State | None) -> None:
        """The session with this hop's text and answer (for resent hops), and the
        phone's resume marker set or cleared, in one round trip."""
        record = json.dumps({"state": state.to_dict(), "length": len(text),
                             "digest": fingerprint(self.secret, text), "answer": answer},
                            separators=(",", ":"))
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.session_key(sid), record, ex=self.settings.session_ttl_seconds)
        if resume is not None:
            pipe.set(self.resume_key(state.phone), resume.to_json(),
                     ex=self.settings.resume_window_seconds)
        else:
            pipe.delete(self.resume_key(state.phone))
        pipe.execute()

    def state_of(self, sid: str) -> State | None:
        raw = cast(bytes | None, self.client.get(self.session_key(sid)))
        return State.from_dict(json.loads(raw)["state"]) if raw else None

    def mark_dropped(self, phone: str, resume: State) -> None:
        self.client.set(self.resume_key(phone), resume.to_json(),
                        ex=self.settings.resume_window_seconds)

    def clear_resume(self, phone: str) -> None:
        self.client.delete(self.resume_key(phone))
