"""Session state: a small, JSON-serialisable record of where a caller is in the menus."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


@dataclass
class Caller:
    """The member on the line, cached after the first lookup of a session."""

    id: int
    first_name: str
    roles: list[str]
    language: str
    status: str  # pending | verified | suspended
    terms: bool  # accepted the terms
    pin: bool  # has a PIN
    limit: int  # credit limit, minor units
    locked_until: str = ""  # ISO time the PIN is locked until; "" when it is not
    helper: str = ""  # who helps this member: their agent's first name, or "" (Harambee)
    helper_phone: str = ""  # and their number, as dialled at home
    waiting: int = 0  # things waiting for their answer under Group, when they dialled

    def has(self, role: str) -> bool:
        return role in self.roles

    def to_dict(self) -> dict[str, Any]:
        """As `dataclasses.asdict` gives it, without its deep copies (a hop's cost)."""
        return {**vars(self), "roles": list(self.roles)}

    def locked(self, now: datetime) -> bool:
        return bool(self.locked_until) and datetime.fromisoformat(self.locked_until) > now


@dataclass
class State:
    """Where the caller is: the menu node, what the current flow collected so far, the
    page of a list, and the caller cached after the first lookup."""

    node: str = ""  # "" until the first screen is shown
    lang: str = "en"
    step: int = 0  # hops answered in this session
    page: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    caller: Caller | None = None
    ended: bool = False
    looked_up: bool = False  # the caller (or their absence) is known
    phone: str = ""  # E.164, as the gateway gave it
    sid: str = ""  # a short digest of the gateway's session id
    unlocked: bool = False  # the PIN was typed this session: balances may be shown

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "lang": self.lang, "step": self.step, "page": self.page,
                "data": self.data, "caller": self.caller.to_dict() if self.caller else None,
                "ended": self.ended, "looked_up": self.looked_up, "phone": self.phone,
                "sid": self.sid, "unlocked": self.unlocked}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def copy(self) -> State:
        """A copy the next hop may change (the data dict is deep-copied)."""
        return replace(self, data=copy.deepcopy(self.data),
                       caller=replace(self.caller, roles=list(self.caller.roles))
                       if self.caller else None)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> State:
        caller = raw.get("caller")
        return cls(node=str(raw.get("node", "")), lang=str(raw.get("lang", "en")),
                   step=int(raw.get("step", 0)), page=int(raw.get("page", 0)),
                   data=dict(raw.get("data") or {}),
                   caller=Caller(**caller) if caller else None,
                   ended=bool(raw.get("ended", False)),
                   looked_up=bool(raw.get("looked_up", False)),
                   phone=str(raw.get("phone", "")), sid=str(raw.get("sid", "")),
                   unlocked=bool(raw.get("unlocked", False)))

    @classmethod
    def from_json(cls, raw: str | bytes) -> State:
        return cls.from_dict(json.loads(raw))

    def begin_flow(self) -> None:
        """Start a flow that may end in a money step: its key is fixed here."""
        self.data = {"flow": f"{self.sid}:{self.step}"}

    def flow_key(self, what: str) -> str:
        """The idempotency key of a money step in the current flow (set when the flow
        began, carried across a resumed session), so no replay can repeat it."""
        return f"ussd:{self.data.get('flow', '')}:{what}"
