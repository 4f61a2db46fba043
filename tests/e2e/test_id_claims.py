"""A stranger can neither learn whether a national ID is taken nor lock its owner out:
a self-registered ID is a claim an agent settles."""
from __future__ import annotations

from core import members
from core.models import MemberStatus
from tests.support import PIN
from tests.ussd_phone import Phone, member


def register_self(client, phone: str, name: str, national_id: str) -> str:
    return Phone(client, phone).run("1", name, national_id, "1", "1", "4826", "4826")


def test_a_taken_id_gets_the_same_answer_as_a_free_one(client, world):
    holder = world.member("Amina Otieno", roles="borrower")
    taken = register_self(client, "+254733000501", "Baraka Mwangi", holder.national_id or "")
    free = register_self(client, "+254733000502", "Baraka Mwangi", "39999999")
    assert taken == free and taken.startswith("END Welcome, Baraka!")
    squatter = member(world, "+254733000501")
    assert squatter.status == MemberStatus.PENDING and squatter.national_id is None
    assert squatter.claimed_national_id == holder.national_id
    assert [(a.id, b.id) for a, b in members.id_clashes(world.uow())] == \
        [(squatter.id, holder.id)]


def test_the_true_owner_is_registered_by_an_agent_after_a_squatter(client, world):
    squat = register_self(client, "+254733000601", "Juma Squatter", "31234567")
    assert squat.startswith("END Welcome, Juma!")
    agent = world.agent()
    phone = Phone(client, agent.phone)
    phone.run("1", "1", "0733 000 602", "Zawadi Achieng", "31234567", "Nyeri", "1", "1")
    assert phone.press(PIN).startswith("END Zawadi Achieng (0733 000602) is registered")
    owner = member(world, "+254733000602")
    assert owner.national_id == "31234567" and owner.status == MemberStatus.VERIFIED
    # Verifying the squatter now shows the agent the clash; nothing changes.
    check = Phone(client, agent.phone)
    check.run("1", "2", "0733000601", "1")
    said = check.press(PIN)
    assert "already" in said
    assert member(world, "+254733000601").status == MemberStatus.PENDING


def test_verifying_a_claim_makes_it_the_members_id(client, world):
    register_self(client, "+254733000701", "Halima Njoroge", "32345678")
    agent = world.agent()
    phone = Phone(client, agent.phone)
    phone.run("1", "2", "0733000701", "1")
    assert phone.press(PIN).startswith("END Halima Njoroge is verified")
    verified = member(world, "+254733000701")
    assert (verified.national_id, verified.claimed_national_id) == ("32345678", None)
