"""The hop's budget and the session store: SQL queries per hop, Redis round trips, no
PIN kept anywhere, the rate limit, and what a session stores."""
from __future__ import annotations

import itertools
import json

import pytest
import redis
from sqlalchemy import event

from tests.support import PIN
from ussd.session import fingerprint, session_digest

KEY = "test-webhook-key"
_ids = itertools.count()


@pytest.fixture
def queries(services):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's own BEGIN
            seen.append(statement)

    for engine in services.db.engines:
        event.listen(engine, "before_cursor_execute", count)
    yield seen
    for engine in services.db.engines:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def round_trips(monkeypatch):
    calls: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        calls.append(1)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    return calls


def dial(client, phone, inputs):
    session, text, bodies = f"s{next(_ids)}", "", []
    for n, value in enumerate([None, *inputs]):
        if value is not None:
            text = value if n == 1 else f"{text}*{value}"
        response = client.post(f"/hooks/ussd?key={KEY}", data={
            "sessionId": session, "phoneNumber": phone, "text": text})
        bodies.append(response.get_data(as_text=True))
        yield session, bodies[-1]


def test_menu_hops_stay_within_four_queries_and_navigation_needs_none(client, world, queries):
    member = world.member("Amina Otieno", roles="borrower,lender,agent")
    world.top_up(member, 100_000)
    world.listed_loan()
    steps = ["9", "0", "8", "0", "2", "0", "5", "0", "4", "0", "6", "0", "7", "0", "3"]
    per_hop = []
    queries.clear()
    for _, _body in dial(client, member.phone, steps):
        per_hop.append(len(queries))
        queries.clear()
    assert per_hop[0] <= 4  # the first hop looks the caller up once
    assert all(n <= 4 for n in per_hop), per_hop
    # main menu -> settings -> back: the session holds the caller, no query at all
    assert per_hop[1] == 0 and per_hop[2] == 0


def test_a_hop_is_one_redis_round_trip_to_load_and_one_to_save(client, world, round_trips):
    member = world.member("Amina Otieno", roles="borrower")
    counts = []
    round_trips.clear()
    for _, _body in dial(client, member.phone, ["5", "0"]):
        counts.append(len(round_trips))
        round_trips.clear()
    assert counts == [2, 2, 2]


def test_no_pin_is_kept_in_the_session(client, world, services):
    member = world.member("Amina Otieno", roles="borrower")
    for session, _body in dial(client, member.phone, ["5", "2", PIN, "4826", "4826"]):
        raw = services.redis.client.get(f"ussd:s:{session_digest(session)}") or b""
        assert b"4826" not in raw and PIN.encode() not in raw
        for key in services.redis.client.scan_iter("ussd:*"):
            if services.redis.client.type(key) == b"string":
                value = services.redis.client.get(key) or b""
                assert b"4826" not in value and PIN.encode() not in value, value
    assert _body.startswith("END Your PIN is changed")


def test_no_pin_can_be_recovered_from_what_the_session_keeps(client, world, services):
    """An attacker with a Redis dump and every key we have tries all 10,000 PINs against
    the digests kept: none matches, because the PINs are blanked before digesting."""
    member = world.member("Amina Otieno", roles="borrower")
    texts = []
    for session, _body in dial(client, member.phone, ["5", "2", PIN]):
        raw = services.redis.client.get(f"ussd:s:{session_digest(session)}")
        texts.append(raw)
    record = json.loads(texts[-1])
    assert record["secrets"] == [[4, 8]]  # where the PIN lay in "5*2*2580"
    security = services.settings.security
    for key in (security.webhook_key, security.session_secret):
        for spans in ([], record["secrets"]):
            found = [pin for pin in (f"{n:04d}" for n in range(10_000))
                     if fingerprint(key.encode(), f"5*2*{pin}", spans) == record["digest"]]
            assert found in ([], [f"{n:04d}" for n in range(10_000)]), (key, spans, found[:3])


def test_a_phone_over_its_rate_limit_is_told_to_wait(client, world, services):
    member = world.member("Amina Otieno", roles="borrower")
    limit = services.settings.ussd.rate_limit_per_minute
    bodies = [body for _, body in dial(client, member.phone, ["5", "0"] * (limit // 2 + 1))]
    assert bodies[limit - 1].startswith("CON ")
    assert bodies[limit].startswith("END Too many requests")


def test_the_session_lives_in_redis_with_a_ttl(client, world, services):
    member = world.member("Amina Otieno", roles="borrower")
    for session, _ in dial(client, member.phone, ["1"]):
        ttl = services.redis.client.ttl(f"ussd:s:{session_digest(session)}")
        assert 0 < ttl <= services.settings.ussd.session_ttl_seconds


def test_a_text_that_is_not_an_extension_is_taken_as_the_new_input(client, world):
    member = world.member("Amina Otieno", roles="borrower")
    session = "fresh-path"

    def send(text):
        return client.post(f"/hooks/ussd?key={KEY}", data={
            "sessionId": session, "phoneNumber": member.phone, "text": text}
        ).get_data(as_text=True)

    send("")
    assert "Settings:" in send("5")
    assert "Language / Lugha" in send("1")  # a gateway sending only the latest input
    assert send("1*2").startswith("CON Lugha sasa ni Kiswahili.\n1. Omba mkopo")
