"""Caller cards: what the USSD dial needs to know of a member (`ussd.state.Caller`), kept
in Redis beside the sessions so that the dial of a known caller reads no SQL.

Correctness rests on three rules:
- A card is only ever filled from a read of the database, and only if nothing about
  that member was committed since the hop began: the hop reads the member's
  generation counter (and the cards' epoch) in the same pipeline as the card, and the
  fill is a script that sets the card only while both are unchanged.
- Every unit of work that wrote a member's row (`core.db.Committed.members`) bumps
  that member's generation and deletes the card after commit, before the use case
  returns (`Services._after_commit`); a change to an agent's name or number bumps the
  epoch, so every card (each names its helper) is dropped.
- The card holds no money: balances and loan states on a screen are read from the
  database on the hop that shows them.

A fill that read the database before a commit and reaches Redis after its bump is
refused; one that reached Redis before the bump is deleted by it. A card may outlive
a change only if Redis refused the bump itself (it is then down, and USSD with it);
`TTL_SECONDS` bounds even that.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

PREFIX = "ussd:card"
EPOCH_KEY = f"{PREFIX}:epoch"
TTL_SECONDS = 3600

# KEYS: card, generation, epoch; ARGV: card json, generation seen, epoch seen, ttl.
_FILL = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[2]
   and (redis.call('GET', KEYS[3]) or '0') == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[4]))
  return 1
end
return 0
"""


def card_key(phone: str) -> str:
    return f"{PREFIX}:{phone}"


def generation_key(phone: str) -> str:
    return f"{PREFIX}:gen:{phone}"


def text(raw: Any) -> str:
    """A generation or epoch as read from Redis ("0" when never bumped)."""
    if raw is None:
        return "0"
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def fill(client: redis.Redis | Any, phone: str, card: str, generation: str,
         epoch: str) -> Any:
    """Keep `card` (read from the database this hop) unless the member changed since
    `generation` and `epoch` were read; 1 when kept. `client` may be a pipeline, which
    then sends it with the rest."""
    keys = [card_key(phone), generation_key(phone), EPOCH_KEY]
    return client.eval(_FILL, 3, *keys, card, generation, epoch, str(TTL_SECONDS))


def forget(client: redis.Redis, phones: Iterable[str], agents: bool = False) -> None:
    """After a commit that wrote these members (or an agent's name or number): bump
    their generations and drop their cards, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for phone in phones:
        pipe.incr(generation_key(phone))
        pipe.expire(generation_key(phone), TTL_SECONDS * 2)
        pipe.delete(card_key(phone))
    if agents:
        pipe.incr(EPOCH_KEY)
    pipe.execute()
