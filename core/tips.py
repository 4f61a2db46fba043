"""Weekly money tips, for members who asked for them (`TIPS ON`).

The tips live in a content file (`core/content/tips.toml`), each in both languages;
every member who wants tips gets the same tip in a given ISO week, in their language,
in the order of the file. A member gets a tip when:
- they sent `TIPS ON` (or `START`) and have not since sent `TIPS OFF` or `STOP`;
- their number is reachable, and they are not erased;
- they have had no tip this ISO week: `members.last_tip_week` is set as the tip is
  written, and the tip's outbox key `tip:<member>:<week>` is unique, so two runs, or
  a run repeated after a crash, never write a second one;
- it is the send window: from SEND_FROM on SEND_DAY (local time) to the end of the
  week, outside the quiet hours (`reminders.quiet_until`). The duty runs with the
  reminders every quarter hour; a run in the window writes the week's tips, a run
  outside it writes nothing, so a missed Wednesday is caught up on Thursday.
A tip already written to someone who sends STOP before it leaves is never sent
(`delivery.skip_opted_out_tips`).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, time
from functools import cache
from pathlib import Path

from sqlalchemy import select, update

from core import members, outbox
from core.db import UnitOfWork
from core.messages import LANGUAGES
from core.models import Member, MemberStatus, Purpose
from core.reminders import quiet_until

CONTENT = Path(__file__).parent / "content" / "tips.toml"
SEND_DAY = 2  # Wednesday (Monday is 0)
SEND_FROM = time(10, 0)  # local time
BATCH = 1000
MAX_TIP = 100  # characters, so the SMS with its opening and ending fits 160


@dataclass(frozen=True)
class Tip:
    texts: dict[str, str]  # language -> text


@cache
def tips(path: Path = CONTENT) -> tuple[Tip, ...]:
    """The tips of the content file, in order; each must have every language."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    found = tuple(Tip({lang: str(entry[lang]).strip() for lang in LANGUAGES})
                  for entry in raw.get("tip", []))
    if not found:
        raise ValueError(f"{path}: no tips")
    return found


def week_of(moment: datetime, uow: UnitOfWork) -> str:
    """The local ISO week of a moment, as stored: `2026-W10`."""
    year, week, _ = moment.astimezone(uow.settings.zone).isocalendar()
    return f"{year}-W{week:02d}"


def tip_for_week(week: str) -> Tip:
    """The week's tip: the file's tips in turn, one a week."""
    year, number = week.split("-W")
    every = tips()
    return every[(int(year) * 53 + int(number)) % len(every)]


def set_wanted(uow: UnitOfWork, member_id: int, *, wanted: bool) -> Member:
    """TIPS ON / TIPS OFF (and START / STOP, which say the same about tips)."""
    return members.set_tips(uow, member_id, wanted=wanted)


def in_window(uow: UnitOfWork, now: datetime) -> bool:
    """From SEND_DAY at SEND_FROM to the week's end, local time, outside quiet hours."""
    local = now.astimezone(uow.settings.zone)
    started = (local.weekday(), local.time()) >= (SEND_DAY, SEND_FROM)
    return started and quiet_until(uow.settings, now) is None


def queue_weekly_tips(uow: UnitOfWork, now: datetime) -> int:
    """Write this week's tip to every member who wants one and has none yet this week;
    return how many were written. Nothing outside the send window."""
    with uow:
        if not in_window(uow, now):
            return 0
        week = week_of(now, uow)
        tip = tip_for_week(week)
        written = 0
        last = 0
        while True:  # a transaction per batch: a crash keeps what was written
            rows = uow.session.execute(
                select(Member.id, Member.phone, Member.language)
                .where(Member.id > last, Member.tips_wanted.is_(True),
                       Member.tips_opt_out.is_(False), Member.sms_unreachable.is_(False),
                       Member.status != MemberStatus.ERASED,
                       (Member.last_tip_week.is_(None)) | (Member.last_tip_week != week))
                .order_by(Member.id).limit(BATCH)).all()
            if not rows:
                break
            last = rows[-1][0]
            messages = [outbox.Sms(key=f"tip:{member_id}:{week}", phone=phone,
                                   language=lang, template="sms.tip", purpose=Purpose.TIP,
                                   member_id=member_id,
                                   params={"tip": tip.texts.get(lang, tip.texts["en"])})
                        for member_id, phone, lang in rows]
            written += len(outbox.queue(uow, messages, now))
            uow.session.execute(
                update(Member).where(Member.id.in_([row[0] for row in rows]))
                .values(last_tip_week=week).execution_options(synchronize_session=False))
            uow.commit()
        return written
