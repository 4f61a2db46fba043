"""Screens: what one USSD hop shows, and the helpers that make text fit a handset."""
from __future__ import annotations

from dataclasses import dataclass

ELLIPSIS = "."


@dataclass(frozen=True)
class Screen:
    """One answer. `title` is context that a re-ask replaces with the reason; `body` is
    the question or the options. `end` closes the session."""

    body: str
    title: str = ""
    end: bool = False

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}" if self.title and self.body else self.title or self.body

    def payload(self) -> str:
        """The exact response body, unclipped: `CON ...` or `END ...`."""
        return ("END " if self.end else "CON ") + self.text

    def render(self, max_chars: int) -> str:
        """The response body, never over `max_chars` (a last resort: screens are written
        to fit, and the state-graph test checks they do without this)."""
        full = self.payload()
        if len(full) <= max_chars:
            return full
        return clip(full, max_chars)


def fit(parts: list[str], room: int, *, keep: int = 1, sep: str = ", ") -> str:
    """Whole parts joined by `sep` in at most `room` characters where they allow: the
    first `keep` always, each later one only if it still fits. A long name means fewer
    details on the line, never a word cut short."""
    line = sep.join(parts[:keep])
    for part in parts[keep:]:
        if part and len(line) + len(sep) + len(part) <= room:
            line += sep + part
    return line


def clip(full: str, max_chars: int) -> str:
    """Cut a whole screen to `max_chars`, at a line or word boundary where possible."""
    if len(full) <= max_chars:
        return full
    head = full[:max_chars - len(ELLIPSIS)]
    for sep in ("\n", " "):
        at = head.rfind(sep)
        if at > max_chars // 2:
            return head[:at].rstrip() + ELLIPSIS
    return head + ELLIPSIS
