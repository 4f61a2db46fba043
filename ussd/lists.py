"""Lists shown a page at a time, as many whole rows as fit the screen: a row is never
cut short, and a long row only means fewer rows on that page. `98` more, `0` back a
page; rows picked by number when the list is choosable."""
from __future__ import annotations

from typing import Any

from ussd.nodes import NAV_MORE, REASON, SHOW_CURRENT, Node, Outcome, Reask, pick, t
from ussd.port import Port
from ussd.screen import Screen
from ussd.state import State


class Paged(Node):
    """Subclasses fetch rows (`rows`), say each in words (`line`) and, when choosable,
    what picking one means (`chosen`)."""

    empty_key = ""
    choosable = False

    def __init__(self, name: str, **kw: Any) -> None:
        super().__init__(name, paged=True, **kw)

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        raise NotImplementedError

    def line(self, st: State, port: Port, row: Any, room: int) -> str:
        """A row in words; `room` is what one row alone may take on this page."""
        raise NotImplementedError

    def key_of(self, row: Any) -> Any:
        """What picking a row keeps in the session (a loan number, say)."""
        return None

    def chosen(self, st: State, port: Port, picked: Any) -> Outcome:
        raise NotImplementedError

    def show(self, st: State, port: Port) -> Screen:
        why = st.data.pop(REASON, "")
        starts: list[int] = st.data.setdefault("starts", [0])
        start = starts[min(st.page, len(starts) - 1)]
        size = port.settings.ussd.page_size
        rows = self.rows(st, port, start, size + 1)
        if not rows:
            return Screen(t(st, self.empty_key) + "\n" + t(st, "ussd.nav.back"), title=why)
        room = port.settings.ussd.max_chars - len("CON ") - (len(why) + 1 if why else 0)
        alone = room - len(self._page(st, ["1. " if self.choosable else ""], True))
        texts = [self.line(st, port, row, alone) for row in rows[:size]]
        shown: list[str] = []
        for index, text in enumerate(texts, start=1):
            candidate = [*shown, f"{index}. {text}" if self.choosable else text]
            more = index < len(rows)
            if shown and len(self._page(st, candidate, more)) > room:
                break
            shown = candidate
        more = len(shown) < len(rows)
        st.data["more"] = more
        if more:
            del starts[st.page + 1:]
            starts.append(start + len(shown))
        st.data["picks"] = [self.key_of(row) for row in rows[:len(shown)]]
        return Screen(self._page(st, shown, more), title=why)

    @staticmethod
    def _page(st: State, lines: list[str], more: bool) -> str:
        footer = ([t(st, "ussd.nav.more")] if more else []) + [t(st, "ussd.nav.back")]
        return "\n".join([*lines, *footer])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if value == NAV_MORE and st.data.get("more"):
            st.page += 1
            return SHOW_CURRENT
        if not self.choosable:
            return self.parent  # a list to read: any other answer goes back
        picks = st.data.get("picks") or []
        if not picks:
            raise Reask("ussd.choose")
        return self.chosen(st, port, picks[pick(value, len(picks))])
