"""The USSD hop's door in front of Flask (`ussd/http.py`, `HopDoor`): it answers the
plain urlencoded hop itself, reads the form exactly as Flask's route does, and leaves
everything else to that route, which answers it the same way or refuses it."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.ussd_phone import KEY

PATH = f"/hooks/ussd?key={KEY}"


@pytest.fixture
def flask_hops(app):
    """Counts the hops Flask's own route answers."""
    seen = []
    view = app.view_functions["ussd.hop"]

    def counted(*args, **kwargs):
        seen.append(1)
        return view(*args, **kwargs)

    app.view_functions["ussd.hop"] = counted
    return seen


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
