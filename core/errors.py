"""Domain errors: each carries a message key and the values its text needs."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A use case refused; `key` names the text in core/messages, `params` fill it."""

    key: str = "error.generic"

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        self.key = key or self.key
        self.params = params
        super().__init__(self.key, params)


class NotFound(DomainError):
    key = "error.not_found"


class NotAllowed(DomainError):
    key = "error.not_allowed"


class InvalidInput(DomainError):
    key = "error.invalid"


class Conflict(DomainError):
    """An idempotency key reused with different fields, or a state that moved on."""

    key = "error.conflict"


class InsufficientFunds(DomainError):
    key = "wallet.insufficient"


class PinLocked(DomainError):
    key = "pin.locked"


class WrongPin(DomainError):
    key = "pin.wrong"

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        if key is None and params.get("tries_left") == 1:
            key = "pin.wrong_one"  # "1 try left", "jaribio 1"
        super().__init__(key, **params)
