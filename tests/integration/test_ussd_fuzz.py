"""Random input sequences over the real endpoint: only valid answers, never a 500, and
the ledger's invariants still hold afterwards."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import checks
from core.messages import text as message
from tests.support import PIN

KEY = "test-webhook-key"
_ids = itertools.count()

typed = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "00", "98", "", "500",
                     "1,000", PIN, "1357", "Juma Hassan", "12345678", "0733000444",
                     "Kisumu"]),
    st.text(alphabet="0123456789*#", max_size=12),
    st.text(max_size=300),
)
dialer = st.sampled_from(["+254711000001", "+254722000001", "+254700000001", "+254733000444"])
hops = st.lists(st.tuples(typed, st.booleans()), max_size=12)


def seed(world):
    agent = world.member("Grace Wanjiku", roles="agent,borrower,lender", phone="+254700000001")
    borrower = world.member("Amina Otieno", roles="borrower,lender", phone="+254711000001")
    lender = world.member("Otieno Ochieng", roles="lender", phone="+254722000001")
    world.top_up(lender, 1_000_000)
    world.top_up(agent, 200_000)
    world.listed_loan(borrower, amount=300_000)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(phone=dialer, sequence=hops)
def test_any_input_gets_a_valid_answer_and_the_ledger_stays_whole(client, world, phone,
                                                                  sequence):
    if not world.services.redis.client.exists("fuzz:seeded"):
        seed(world)
        world.services.redis.client.set("fuzz:seeded", 1)
    redis = world.services.redis.client
    for rate in redis.scan_iter("ussd:rate:*"):
        redis.delete(rate)  # the per-phone rate limit is tested elsewhere
    session, text = f"fuzz-{next(_ids)}", ""
    for n, (value, fresh) in enumerate([("", False), *sequence]):
        if n and fresh:
            text = value  # a text that does not extend the last one
        elif n:
            text = value if n == 1 and not text else f"{text}*{value}"
        response = client.post(f"/hooks/ussd?key={KEY}", data={
            "sessionId": session, "phoneNumber": phone, "serviceCode": "*384*123#",
            "text": text})
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert body.startswith(("CON ", "END ")), body
        assert len(body) <= 182
        assert message("ussd.error", "en") not in body, (text, body)  # no crash
        if body.startswith("END "):
            break
    with world.uow() as uow:
        assert checks.check(uow) == []
