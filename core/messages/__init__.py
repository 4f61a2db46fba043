"""Every text a person reads, per language, by key.

Each language is a package (`en`, `sw`) whose modules each define `TEXTS`, a dict of
key -> template with `{named}` placeholders; modules are split by channel so that each
owner edits its own file. `text()` fills a template; a missing key in one language
falls back to English rather than failing in front of a person.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import string
from datetime import date, datetime
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

LANGUAGES = ("en", "sw")
DEFAULT_LANGUAGE = "en"


def _load(lang: str) -> dict[str, str]:
    package = importlib.import_module(f"{__name__}.{lang}")
    merged: dict[str, str] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        texts: dict[str, str] = getattr(module, "TEXTS", {})
        clash = merged.keys() & texts.keys()
        if clash:
            raise RuntimeError(f"message keys defined twice in {lang}: {sorted(clash)}")
        merged.update(texts)
    return merged


CATALOG: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def language_or_default(lang: str | None) -> str:
    return lang if lang in CATALOG else DEFAULT_LANGUAGE


def text(key: str, lang: str | None = None, /, **params: Any) -> str:
    """The text for `key` in `lang`, placeholders filled."""
    lang = language_or_default(lang)
    template = CATALOG[lang].get(key) or CATALOG[DEFAULT_LANGUAGE].get(key)
    if template is None:
        # A person must never see a crash for a missing text; tests keep this from happening.
        log.error("no text for message key %r", key)
        template = CATALOG[lang]["error.generic"]
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        log.error("text %r lacks a placeholder value (given %s)", key, sorted(params))
        return CATALOG[lang]["error.generic"]


def has(key: str) -> bool:
    return key in CATALOG[DEFAULT_LANGUAGE]


@cache
def placeholders(template: str) -> frozenset[str]:
    """The `{names}` a template needs (for catalogue tests)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def format_date(value: date | datetime, lang: str | None = None) -> str:
    """Dates as Kenyans write them: 05/12/2026 (the same in both languages)."""
    return value.strftime("%d/%m/%Y")


def format_time(value: datetime) -> str:
    return value.strftime("%H:%M")


GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
_GSM7 = frozenset(GSM7_BASIC + GSM7_EXTENDED)


def is_gsm7(value: str) -> bool:
    """True when every character fits the GSM-7 alphabet (basic or extension table)."""
    return all(ch in _GSM7 for ch in value)


def gsm7_length(value: str) -> int:
    """Septets used: extension-table characters count twice."""
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in value)


def sms_parts(value: str) -> int:
    """How many SMS parts a text costs (GSM-7 160/153, otherwise UCS-2 70/67)."""
    if is_gsm7(value):
        n = gsm7_length(value)
        return 1 if n <= 160 else -(-n // 153)
    n = len(value)
    return 1 if n <= 70 else -(-n // 67)
