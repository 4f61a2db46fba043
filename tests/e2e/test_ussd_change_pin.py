"""Changing a PIN by USSD: the old PIN is checked, the new one works, the old one no longer."""
from __future__ import annotations

import pytest

from core import members
from core.errors import WrongPin
from tests.support import PIN
from tests.ussd_phone import Phone


def test_change_pin_then_only_the_new_pin_works(client, world):
    borrower = world.member("Amina Otieno", roles="borrower")
    phone = Phone(client, borrower.phone)
    menu = phone.dial()
    settings_choice = next(line.split(".")[0] for line in menu.splitlines()
                           if line.endswith("Settings"))
    screen = phone.press(settings_choice)
    change = next(line.split(".")[0] for line in screen.splitlines()
                  if line.endswith("Change PIN"))
    assert "current PIN" in phone.press(change)
    assert "Choose" in phone.press(PIN)
    assert "same PIN again" in phone.press("7314")
    assert "changed" in phone.press("7314")
    members.check_pin(world.uow(), borrower.id, "7314", world.now)
    with pytest.raises(WrongPin):
        members.check_pin(world.uow(), borrower.id, PIN, world.now)
