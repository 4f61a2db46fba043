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


def shorten(value: str, width: int) -> str:
    """`value` in at most `width` characters, cut at a word boundary when one is near,
    with a `.` marking the cut."""
    value = " ".join(value.split())
    if len(value) <= width:
        return value
    if width <= 1:
        return value[:max(width, 0)]
    room = width - len(ELLIPSIS)
    cut = value[:room + 1]
    space = cut.rfind(" ")
    if space >= room // 2 and space > 0:
        return value[:space].rstrip() + ELLIPSIS
    return value[:room].rstrip() + ELLIPSIS


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


def squeeze(template: str, budget: int, fields: dict[str, str], shrink: tuple[str, ...],
            floor: int = 3) -> str:
    """Fill `template` so the result fits `budget`, shortening the `shrink` fields (the
    longest first, never below `floor` characters) only as much as needed."""
    values = dict(fields)
    line = template.format(**values)
    while len(line) > budget:
        candidates = sorted((k for k in shrink if len(values[k]) > floor),
                            key=lambda k: len(values[k]), reverse=True)
        if not candidates:
            break
        longest = candidates[0]
        runner_up = len(values[candidates[1]]) if len(candidates) > 1 else floor
        # Level the longest down towards the next longest, so the cut is shared.
        width = max(floor, len(values[longest]) - (len(line) - budget), runner_up)
        if width >= len(values[longest]):
            width = len(values[longest]) - 1
        shorter = shorten(values[longest], width)
        if len(shorter) >= len(values[longest]):
            shorter = values[longest][:width]
        values[longest] = shorter
        line = template.format(**values)
    return line
