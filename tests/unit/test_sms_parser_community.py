"""The community and data-rights commands (docs/community.md), in both languages."""
from __future__ import annotations

import pytest

from sms.parser import Command, parse


@pytest.mark.parametrize(("text", "name", "language"), [
    ("PORTFOLIO", "portfolio", "en"), ("uwekezaji", "portfolio", "sw"),
    ("STATEMENT", "statement", "en"), ("Taarifa", "statement", "sw"),
    ("DATA", "data", None), ("kumbukumbu", "data", "sw"),
])
def test_commands_without_arguments(text, name, language):
    assert parse(text) == Command(name, keyword_language=language)


@pytest.mark.parametrize(("text", "story", "language"), [
    ("STORY I bought a fridge, now I sell sodas!", "I bought a fridge, now I sell sodas!", "en"),
    ("hadithi:  Nilinunua   cherehani ", "Nilinunua cherehani", "sw"),
    ("Story - Asante sana", "Asante sana", "en"),
])
def test_a_story_keeps_its_words_as_written(text, story, language):
    assert parse(text) == Command("story", text=story, keyword_language=language)


@pytest.mark.parametrize("text", ["STORY", "hadithi  ", "story -"])
def test_a_story_without_words_says_how(text):
    assert parse(text).error == "sms.story_usage"


@pytest.mark.parametrize(("text", "choice"), [
    ("TIPS ON", "on"), ("tips off", "off"), ("VIDOKEZO WASHA", "on"), ("vidokezo zima", "off"),
    ("Tips on.", "on"), ("TIPS WASHA", "on"), ("vidokezo off", "off"),
])
def test_tips_on_and_off_in_either_language(text, choice):
    parsed = parse(text)
    assert (parsed.name, parsed.choice, parsed.error) == ("tips", choice, None)


@pytest.mark.parametrize("text", ["TIPS", "tips maybe", "vidokezo on off"])
def test_tips_without_a_clear_switch_say_how(text):
    assert parse(text).error == "sms.tips_usage"


@pytest.mark.parametrize(("text", "loan"), [
    ("THANKS L1007", "L1007"), ("asante 1007", "L1007"), ("Asante sana L-1007!", "L1007"),
    ("thank you L 1007", "L1007"), ("AHSANTE #L1007", "L1007"),
])
def test_thanks_finds_the_loan_among_kind_words(text, loan):
    parsed = parse(text)
    assert (parsed.name, parsed.loan, parsed.error) == ("thanks", loan, None)


@pytest.mark.parametrize("text", ["THANKS", "asante sana", "thanks a lot"])
def test_thanks_without_a_loan_number_says_how(text):
    assert parse(text).error == "sms.thanks_usage"


@pytest.mark.parametrize(("text", "choice", "words"), [
    ("DATA FIX my name is Amina Atieno", "fix", "my name is Amina Atieno"),
    ("data correct: ID 12345678", "fix", "ID 12345678"),
    ("KUMBUKUMBU REKEBISHA jina ni Atieno", "fix", "jina ni Atieno"),
    ("DATA DELETE", "delete", None), ("data erase", "delete", None),
    ("DATA FUTA", "delete", None), ("kumbukumbu futa tafadhali", "delete", None),
])
def test_data_requests_in_either_language(text, choice, words):
    parsed = parse(text)
    assert (parsed.name, parsed.choice, parsed.text, parsed.error) == ("data", choice, words, None)


def test_a_correction_without_words_and_an_unknown_data_word_say_how():
    assert parse("DATA FIX").error == "sms.data_fix_usage"
    assert parse("data rekebisha ...").error == "sms.data_fix_usage"
    assert parse("DATA please").error == "sms.data_usage"


def test_mistyped_new_keywords_are_suggested_never_run():
    assert parse("STATMENT") == Command("unknown", suggestion="STATEMENT")
    assert parse("PORTFOLO").suggestion == "PORTFOLIO"
    assert parse("hadith").suggestion == "HADITHI"
