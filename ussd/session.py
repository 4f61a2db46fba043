"""USSD sessions in Redis: one round trip to load a hop's state (session, the phone's
rate-limit counter and resume marker), one to save it. Nothing lives in the web process.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis

from core.config import UssdSettings
from ussd.state import State

PREFIX = "ussd"


def session_digest(session_id: str) -> str:
    """Gateway session ids are untrusted text: keys use a fixed-length digest."""
    return hashlib.blake2b(session_id.encode("utf-8", "replace"), digest_size=12).hexdigest()


@dataclass
class Loaded:
    """What one hop starts from."""

    state: State | None  # None: a new session
    last_text: str | None  # the `text` of the last hop answered
    last_answer: str | None  # and what we answered
    hops_this_minute: int
    resume: State | None  # a dropped session this phone may continue


class SessionStore:
    def __init__(self, client: redis.Redis, settings: UssdSettings) -> None:
        self.client = client
        self.settings = settings

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
        state = last_text = last_answer = None
        if raw:
            record = json.loads(raw)
            state = State.from_dict(record["state"])
            last_text, last_answer = record["text"], record["answer"]
        resume = State.from_json(resume_raw) if resume_raw else None
        return Loaded(state, last_text, last_answer, int(hops), resume)

    def save(self, sid: str, state: State, text: str, answer: str,
             resume: State | None) -> None:
        """The session with this hop's text and answer (for resent hops), and the
        phone's resume marker set or cleared, in one round trip."""
        record = json.dumps({"state": json.loads(state.to_json()), "text": text,
                             "answer": answer}, separators=(",", ":"))
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.session_key(sid), record, ex=self.settings.session_ttl_seconds)
        if resume is not None:
            pipe.set(self.resume_key(state.phone), resume.to_json(),
                     ex=self.settings.resume_window_seconds)
        else:
            pipe.delete(self.resume_key(state.phone))
        pipe.execute()

    def state_of(self, sid: str) -> State | None:
        raw = self.client.get(self.session_key(sid))
        return State.from_dict(json.loads(raw)["state"]) if raw else None

    def mark_dropped(self, phone: str, resume: State) -> None:
        self.client.set(self.resume_key(phone), resume.to_json(),
                        ex=self.settings.resume_window_seconds)

    def clear_resume(self, phone: str) -> None:
        self.client.delete(self.resume_key(phone))
