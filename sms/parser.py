"""Incoming SMS text becomes a `Command`: English or Swahili, any case, sloppy punctuation.

Parsing never executes anything and never raises. A word that is not a keyword is
`unknown`, with the closest keyword as a suggestion; a mistyped keyword is only
ever suggested, never run.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from core.money import AmountError, parse_amount
from core.numbers import loan_number_pattern, normalise_loan_number

# keyword -> (command, language the keyword is in; None when it is neither)
KEYWORDS: dict[str, tuple[str, str | None]] = {
    "?": ("help", None),
    "help": ("help", "en"),
    "msaada": ("help", "sw"),
    "bal": ("balance", "en"),
    "balance": ("balance", "en"),
    "salio": ("balance", "sw"),
    "loans": ("loans", "en"),
    "mikopo": ("loans", "sw"),
    "lend": ("lend", "en"),
    "pledge": ("lend", "en"),
    "kopesha": ("lend", "sw"),
    "yes": ("yes", "en"),
    "ndio": ("yes", "sw"),
    "ndiyo": ("yes", "sw"),
    "no": ("no", "en"),
    "hapana": ("no", "sw"),
    "status": ("status", "en"),
    "hali": ("status", "sw"),
    "pay": ("pay", "en"),
    "lipa": ("pay", "sw"),
    "lang": ("lang", "en"),
    "lugha": ("lang", "sw"),
    "stop": ("stop", "en"),
    "acha": ("stop", "sw"),
    "start": ("start", "en"),
    "anza": ("start", "sw"),
    "dispute": ("dispute", "en"),
    "malalamiko": ("dispute", "sw"),
    # community and data rights (docs/community.md)
    "story": ("story", "en"),
    "hadithi": ("story", "sw"),
    "tips": ("tips", "en"),
    "vidokezo": ("tips", "sw"),
    "thanks": ("thanks", "en"),
    "thank": ("thanks", "en"),
    "asante": ("thanks", "sw"),
    "ahsante": ("thanks", "sw"),
    "portfolio": ("portfolio", "en"),
    "uwekezaji": ("portfolio", "sw"),
    "statement": ("statement", "en"),
    "taarifa": ("statement", "sw"),
    "data": ("data", None),  # the same word in both languages
    "kumbukumbu": ("data", "sw"),
}

# TIPS ON / VIDOKEZO WASHA, TIPS OFF / VIDOKEZO ZIMA
SWITCH_WORDS = {"on": "on", "yes": "on", "washa": "on", "ndio": "on", "ndiyo": "on",
                "off": "off", "no": "off", "zima": "off", "hapana": "off", "acha": "off"}
# DATA FIX <what is wrong> / DATA REKEBISHA ...; DATA DELETE / DATA FUTA
DATA_WORDS = {"fix": "fix", "correct": "fix", "change": "fix", "rekebisha": "fix",
              "sahihisha": "fix", "delete": "delete", "erase": "delete", "remove": "delete",
              "futa": "delete"}

LANGUAGE_WORDS = {
    "en": "en",
    "eng": "en",
    "english": "en",
    "kiingereza": "en",
    "sw": "sw",
    "swa": "sw",
    "swahili": "sw",
    "kiswahili": "sw",
}

_SUGGESTABLE = [word for word in KEYWORDS if word.isalpha()]
_LONGEST_KEYWORD = max(len(word) for word in _SUGGESTABLE)

# Leading noise, then the keyword: `?` or a run of letters; the rest is arguments.
_KEYWORD = re.compile(r"[^\w?]*(?P<keyword>\?|[^\W\d_]+)(?P<rest>.*)", re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)
_FIRST_WORD = re.compile(r"[^\w]*(?P<word>[^\W\d_]+)(?P<text>.*)", re.DOTALL)


@dataclass(frozen=True)
class _LoanPatterns:
    """The loan number's letter in the forms an SMS writes it (from core.numbers)."""

    prefix: str
    alone: re.Pattern[str]  # the letter typed apart from its digits: `L 1042`
    dispute: re.Pattern[str]  # DISPUTE <loan> <text>


@lru_cache(maxsize=8)
def _loan_patterns(prefix: str) -> _LoanPatterns:
    letter = re.escape(prefix)
    return _LoanPatterns(
        prefix=prefix,
        alone=re.compile(rf"{letter}-?", re.IGNORECASE | re.ASCII),
        dispute=re.compile(
            rf"\W*?(?P<loan>#?(?:{letter}\s*-?\s*)?[0-9]{{1,9}})(?![0-9a-z])[\s,.;:-]*"
            rf"(?P<text>.*)", re.IGNORECASE | re.ASCII | re.DOTALL))
_CODE = re.compile(r"#?(?P<code>[0-9]{4,8})", re.ASCII)

# Punctuation people put around words ("YES, 4821."). `-`, `/` and `=` are kept:
# they mean something in `-500`, `L-1042` and `500/=`.
_LEADING_NOISE = "\"'`([{<,;:!?*#_\u2018\u201c"
_TRAILING_NOISE = "\"'`)]}>,.;:!?*_\u2019\u201d"


@dataclass(frozen=True)
class Command:
    """What an SMS asks for; `error` is set when the keyword was right but not its arguments."""

    name: str
    loan: str | None = None
    amount: int | None = None
    code: str | None = None
    language: str | None = None
    text: str | None = None
    choice: str | None = None  # TIPS on/off; DATA fix/delete (None: what is held)
    error: str | None = None
    suggestion: str | None = None
    keyword_language: str | None = None


def parse(text: str, *, scale: int = 100, currency: str = "KES",
          loan_prefix: str = "L") -> Command:
    """The command in an incoming SMS; never raises, whatever the text. Loan numbers
    come back normalised with `loan_prefix` (the setting `loan.number_prefix`)."""
    match = _KEYWORD.match(text)
    if match is None:
        return Command("unknown")
    typed = match["keyword"]
    keyword = typed.lower()
    if not typed.isascii() or keyword not in KEYWORDS:
        return Command("unknown", suggestion=_suggest(typed))
    name, language = KEYWORDS[keyword]
    rest = match["rest"]
    loans = _loan_patterns(loan_prefix)
    args = _tokens(rest, loans)
    command = Command(name, keyword_language=language)
    if name == "lend":
        return _lend(command, args, loans, scale=scale, currency=currency)
    if name in ("yes", "no"):
        return _confirmation(command, args)
    if name == "status":
        loan = normalise_loan(args[0], loan_prefix) if args else None
        return replace(command, loan=loan, error=None if loan else "sms.status_usage")
    if name == "pay" and args:  # PAY 500: a prompt on the phone; PAY alone: how to pay
        try:
            return replace(command, amount=parse_amount(" ".join(args), scale=scale,
                                                        currency=currency))
        except AmountError as error:
            return replace(command, error=error.key)
    if name == "lang":
        chosen = LANGUAGE_WORDS.get(args[0]) if args else None
        return replace(command, language=chosen, error=None if chosen else "sms.lang_usage")
    if name == "dispute":
        return _dispute(command, rest, loans)
    if name == "story":
        story = " ".join(rest.split()).lstrip(":,.;- ")
        return replace(command, text=story or None, error=None if story else "sms.story_usage")
    if name == "tips":
        choice = SWITCH_WORDS.get(args[0]) if len(args) == 1 else None
        return replace(command, choice=choice, error=None if choice else "sms.tips_usage")
    if name == "thanks":
        # THANKS L1007, and any kind words around it: "asante sana L1007"
        loan = next(filter(None, (normalise_loan(arg, loan_prefix) for arg in args)), None)
        return replace(command, loan=loan, error=None if loan else "sms.thanks_usage")
    if name == "data":
        return _data(command, rest)
    return command


def normalise_loan(token: str, prefix: str = "L") -> str | None:
    """`L1042` for `1042`, `l1042`, `L-1042`, `#L1042`; None when the token is not a
    loan number. A token is one word: no spaces inside."""
    if any(ch.isspace() for ch in token):
        return None
    return normalise_loan_number(token, prefix)


def _suggest(typed: str) -> str | None:
    """The keyword closest to a mistyped one, upper-cased for the reply, or None."""
    if len(typed) > 2 * _LONGEST_KEYWORD:
        return None
    close = difflib.get_close_matches(typed.lower(), _SUGGESTABLE, n=1, cutoff=0.6)
    return close[0].upper() if close else None


def _tokens(rest: str, loans: _LoanPatterns) -> list[str]:
    """Argument words, lower-cased, punctuation trimmed, `L 1042` joined into `l1042`."""
    words = (word.lstrip(_LEADING_NOISE).rstrip(_TRAILING_NOISE).lower() for word in rest.split())
    tokens: list[str] = []
    for word in filter(None, words):
        if tokens and loans.alone.fullmatch(tokens[-1]) and _DIGITS.fullmatch(word):
            tokens[-1] += word
        else:
            tokens.append(word)
    return tokens


def _lend(command: Command, args: list[str], loans: _LoanPatterns, *, scale: int,
          currency: str) -> Command:
    """LEND <loan> <amount>, or <amount> <loan> when the loan is written with its `L`."""
    split = _split_loan_and_amount(args, loans)
    if split is None:
        return replace(command, error="sms.lend_usage")
    loan, amount_words = split
    try:
        amount = parse_amount(" ".join(amount_words), scale=scale, currency=currency)
    except AmountError as error:
        return replace(command, loan=loan, error=error.key)
    return replace(command, loan=loan, amount=amount)


def _split_loan_and_amount(args: list[str], loans: _LoanPatterns
                           ) -> tuple[str, list[str]] | None:
    """The loan number and the words of the amount, or None when either is missing or ambiguous."""
    pattern = loan_number_pattern(loans.prefix)
    prefixed = [i for i, arg in enumerate(args) if (m := pattern.fullmatch(arg)) and m["prefix"]]
    if len(prefixed) > 1:
        return None
    if prefixed:
        position = prefixed[0]
        if position not in (0, len(args) - 1) or len(args) < 2:
            return None
        loan = normalise_loan(args[position], loans.prefix)
        amount_words = args[:position] + args[position + 1 :]
    else:
        loan = normalise_loan(args[0], loans.prefix) if len(args) >= 2 else None
        amount_words = args[1:]
    return (loan, amount_words) if loan else None


def _confirmation(command: Command, args: list[str]) -> Command:
    """YES/NO <code>: the code is digits only."""
    match = _CODE.fullmatch(args[0]) if args else None
    if match is None:
        usage = "sms.yes_usage" if command.name == "yes" else "sms.no_usage"
        return replace(command, error=usage)
    return replace(command, code=match["code"])


def _dispute(command: Command, rest: str, loans: _LoanPatterns) -> Command:
    """DISPUTE <loan> <text>: the text is kept as the person wrote it."""
    match = loans.dispute.match(rest)
    loan = normalise_loan("".join(match["loan"].split()), loans.prefix) if match else None
    reason = match["text"].strip() if match else ""
    if loan is None or not any(ch.isalnum() for ch in reason):
        return replace(command, loan=loan, error="sms.dispute_usage")
    return replace(command, loan=loan, text=reason)


def _data(command: Command, rest: str) -> Command:
    """DATA: what is held; DATA FIX <text>: a correction; DATA DELETE: an erasure."""
    if not rest.strip():
        return command
    match = _FIRST_WORD.match(rest)
    choice = DATA_WORDS.get(match["word"].lower()) if match else None
    if match is None or choice is None:
        return replace(command, error="sms.data_usage")
    text = " ".join(match["text"].split()).lstrip(":,.;- ")
    if choice == "fix":
        return replace(command, choice=choice, text=text or None,
                       error=None if any(ch.isalnum() for ch in text) else "sms.data_fix_usage")
    return replace(command, choice=choice)
