"""A request no retry can fix is refused with a 4xx, never a 503 that makes the gateway
try forever; the same SMS posted many times at once is one message and every post 200."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.models import DeliveryReport, InboundSms
from tests.sms_hook import KEY, send
from tests.support import all_at_once
from web.app import create_app


def count(world, model) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("field", ["from", "text", "id", "linkId"])
def test_a_nul_byte_in_an_sms_is_refused_for_good_and_stores_nothing(world, client, field):
    form = {"from": "+254711000001", "to": "22384", "text": "BAL", "id": "ATnul1",
            "date": "2026-03-02 12:00:00", "linkId": "", "networkCode": "63902"}
    form[field] = form[field] + "\x00x"
    response = client.post(f"/hooks/sms?key={KEY}", data=form)
    assert response.status_code == 400
    assert count(world, InboundSms) == 0


def test_a_nul_byte_in_a_delivery_report_is_refused_for_good(world, client):
    response = client.post(f"/hooks/sms/delivery?key={KEY}", data={
        "id": "ATX\x00", "status": "Success", "phoneNumber": "+254711000001"})
    assert response.status_code == 400
    assert count(world, DeliveryReport) == 0


def test_the_same_sms_posted_twenty_times_at_once_is_one_message_and_all_200(world,
                                                                              services):
    member = world.member()
    app = create_app(services=services)
    clients = [app.test_client() for _ in range(20)]
    answers = all_at_once([
        (lambda c=c: send(c, member.phone, "BAL", sms_id="ATsame1").status_code)
        for c in clients])
    assert answers == [200] * 20
    assert count(world, InboundSms) == 1
