"""core.bulk on the real database: many rows in one statement, the same on both backends."""
from __future__ import annotations

from sqlalchemy import select

from core.bulk import add_to_rows, insert_rows, set_rows
from core.models import OutboxMessage, OutboxStatus

OUTBOX = OutboxMessage.__table__


def message(key: str, attempts: int = 0) -> dict[str, object]:
    return {"key": key, "phone": "+254712345678", "language": "en", "purpose": "notice",
            "template": "sms.help", "text": f"text {key}", "attempts": attempts}


def rows(world) -> dict[str, tuple[str, int, str]]:
    with world.uow() as uow:
        found = uow.session.execute(select(OutboxMessage.key, OutboxMessage.status,
                                           OutboxMessage.attempts, OutboxMessage.text))
        return {key: (status, attempts, text) for key, status, attempts, text in found}


def test_insert_rows_returns_the_new_ids_and_adds_the_shared_columns(world):
    with world.uow() as uow:
        ids = insert_rows(uow.session, OUTBOX, [message("a"), message("b", attempts=2)],
                          returning="id", same={"status": OutboxStatus.QUEUED,
                                                "created_at": world.now})
        uow.commit()
    assert len(set(ids)) == 2
    assert rows(world) == {"a": ("queued", 0, "text a"), "b": ("queued", 2, "text b")}


def test_insert_rows_skips_values_already_there_and_returns_only_the_new(world):
    same = {"status": OutboxStatus.QUEUED, "created_at": world.now}
    with world.uow() as uow:
        [first] = insert_rows(uow.session, OUTBOX, [message("a")], returning="id", same=same)
        uow.commit()
    with world.uow() as uow:
        ids = insert_rows(uow.session, OUTBOX, [message("a", attempts=9), message("c")],
                          returning="id", same=same, skip_existing="key")
        uow.commit()
    assert len(ids) == 1 and first not in ids
    assert rows(world) == {"a": ("queued", 0, "text a"), "c": ("queued", 0, "text c")}


def test_set_rows_sets_each_rows_own_values_and_the_shared_ones(world):
    same = {"status": OutboxStatus.QUEUED, "created_at": world.now}
    with world.uow() as uow:
        insert_rows(uow.session, OUTBOX, [message(k) for k in "abc"], same=same)
        ids = dict(uow.session.execute(select(OutboxMessage.key, OutboxMessage.id)).tuples().all())
        changed = set_rows(uow.session, OUTBOX, "id",
                           [{"id": ids["a"], "attempts": 3, "text": "new a"},
                            {"id": ids["c"], "attempts": 5, "text": "new c"},
                            {"id": -1, "attempts": 7, "text": "nobody"}],
                           same={"status": OutboxStatus.SENT})
        uow.commit()
    assert changed == 2
    assert rows(world) == {"a": ("sent", 3, "new a"), "b": ("queued", 0, "text b"),
                           "c": ("sent", 5, "new c")}


def test_add_to_rows_adds_to_each_row_and_counts_the_rows_it_found(world):
    same = {"status": OutboxStatus.QUEUED, "created_at": world.now}
    with world.uow() as uow:
        insert_rows(uow.session, OUTBOX, [message("a", 1), message("b", 2)], same=same)
        ids = dict(uow.session.execute(select(OutboxMessage.key, OutboxMessage.id)).tuples().all())
        changed = add_to_rows(uow.session, OUTBOX, "id", [{"id": ids["a"], "attempts": 10},
                                                          {"id": -1, "attempts": 1}])
        uow.commit()
    assert changed == 1
    assert {k: v[1] for k, v in rows(world).items()} == {"a": 11, "b": 2}
