"""The door in front of Flask (`runtime/http.py`, `Door`): it answers the plain
urlencoded USSD hop and SMS itself, reads the form exactly as Flask's routes do, and
leaves everything else to those routes, which answer it the same way or refuse it. An
SMS is counted against its phone's limit on either way in."""
from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from core.models import InboundSms
from tests.ussd_phone import KEY
from web.app import create_app

PATH = f"/hooks/ussd?key={KEY}"
SMS = f"/hooks/sms?key={KEY}"


def counting_views(app, endpoint: str) -> list[int]:
    """Counts the requests Flask's own route `endpoint` answers."""
    seen: list[int] = []
    view = app.view_functions[endpoint]

    def counted(*args, **kwargs):
        seen.append(1)
        return view(*args, **kwargs)

    app.view_functions[endpoint] = counted
    return seen


@pytest.fixture
def flask_hops(app):
    return counting_views(app, "ussd.hop")


def dial(world, session: str) -> dict[str, str]:
    member = world.member(name="Amina Wanjiru")
    return {"sessionId": session, "serviceCode": "*384*123#",
            "phoneNumber": member.phone, "networkCode": "63902", "text": ""}


def test_a_plain_hop_is_answered_at_the_door_and_the_same_as_flasks_route(
        world, client, flask_hops):
    form = dial(world, "ATUid_door1")
    at_door = client.post(PATH, data=form)
    assert at_door.status_code == 200
    assert at_door.mimetype == "text/plain"
    assert flask_hops == []
    through_flask = client.post(PATH, data={**form, "sessionId": "ATUid_door2"},
                                content_type="multipart/form-data")
    assert flask_hops == [1]
    assert through_flask.status_code == 200
    assert at_door.get_data(as_text=True).startswith("CON Harambee: Amina\n1. ")
    assert through_flask.get_data() == at_door.get_data()
    assert at_door.headers["Content-Length"] == str(len(at_door.get_data()))


def test_the_door_reads_escapes_plus_signs_and_repeats_as_flask_does(world, client,
                                                                       flask_hops):
    form = dial(world, "ATUid_door3")
    # The same session: "+" is a space in a form, %2A is "*", and a repeated field's
    # first value is the one read, at the door and in Flask alike.
    first = client.post(PATH, data=urlencode([*form.items()]),
                        content_type="application/x-www-form-urlencoded")
    body = (urlencode([(k, v) for k, v in form.items() if k != "text"])
            + "&text=&text=9").replace("ATUid_door3", "ATUid%5Fdoor3")
    again = client.post(PATH, data=body, content_type="application/x-www-form-urlencoded")
    assert again.get_data() == first.get_data()  # the replay of the dial, not a pick of 9
    assert flask_hops == []


@pytest.mark.parametrize("key", ["", "wrong"])
def test_a_wrong_key_goes_on_to_flask_which_refuses_it(client, flask_hops, key):
    response = client.post(f"/hooks/ussd?key={key}", data={"sessionId": "x", "text": ""})
    assert response.status_code == 403
    assert flask_hops == [1]


def test_what_is_not_a_plain_hop_is_flasks_to_answer(world, client, flask_hops):
    assert client.get(PATH).status_code == 405
    too_big = client.post(PATH, data={"sessionId": "x", "text": "1" * (70 * 1024)})
    assert too_big.status_code == 413
    bad_utf8 = client.post(PATH, data=b"sessionId=x&phoneNumber=%2B254711000001&text=\xff",
                           content_type="application/x-www-form-urlencoded")
    assert bad_utf8.status_code == 200
    assert bad_utf8.get_data(as_text=True).startswith(("CON ", "END "))
    assert flask_hops == [1, 1]  # the body too big, and the one Flask decodes its own way


def test_a_bad_form_at_the_door_gets_an_end_screen_not_an_error(client, flask_hops):
    response = client.post(PATH, data={"sessionId": "", "phoneNumber": "not a phone"})
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("END ")
    assert flask_hops == []


# ---------------------------------------------------------------- SMS


def stored(world) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(InboundSms))


def sms(phone: str, n: int) -> dict[str, str]:
    return {"from": phone, "to": "22384", "text": "BAL", "id": f"ATdoor{n}",
            "date": "2026-03-02 12:00:00", "linkId": "", "networkCode": "63902"}


def test_an_sms_is_taken_at_the_door_or_by_flask_alike_and_counted_once_a_phone(
        world, services):
    settings = services.settings
    limited = dataclasses.replace(services, settings=dataclasses.replace(
        settings, security=dataclasses.replace(settings.security,
                                               sms_rate_limit="3 per minute")))
    app = create_app(services=limited)
    client, through_flask = app.test_client(), counting_views(app, "sms.incoming")
    member = world.member("Amina Otieno")
    at_door = client.post(SMS, data=sms(member.phone, 1))
    assert (at_door.status_code, through_flask) == (200, [])
    by_flask = client.post(SMS, data=sms(member.phone, 2), content_type="multipart/form-data")
    assert (by_flask.status_code, through_flask) == (200, [1])
    assert by_flask.get_data() == at_door.get_data() == b""
    assert stored(world) == 2
    # one window for both ways in: the third is the last this minute, by either
    assert client.post(SMS, data=sms(member.phone, 3)).status_code == 200
    refused = [client.post(SMS, data=sms(member.phone, 4)),
               client.post(SMS, data=sms(member.phone, 5), content_type="multipart/form-data")]
    assert [r.status_code for r in refused] == [429, 429]
    assert [r.headers["Retry-After"] for r in refused] == ["60", "60"]
    assert stored(world) == 3
    assert client.post(SMS, data=sms(world.member("Baraka").phone, 6)).status_code == 200


def test_an_sms_with_the_wrong_key_goes_on_to_flask_which_refuses_it(world, app, client):
    through_flask = counting_views(app, "sms.incoming")
    member = world.member("Amina Otieno")
    response = client.post("/hooks/sms?key=wrong", data=sms(member.phone, 7))
    assert (response.status_code, through_flask) == (403, [1])
    assert stored(world) == 0
