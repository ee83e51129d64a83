"""Labels in Chinese with English fallback, from one message catalogue (messages.yaml).

Every label has an English text; the Chinese one is shown when the officer reads Chinese (the default) and
falls back to English where a translation is missing. Placeholders are ``{name}``, filled by keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

Translate = Callable[..., str]


@cache
def catalogue() -> dict[str, dict[str, str]]:
    raw = yaml.safe_load(files("exchange.console").joinpath("messages.yaml").read_text(encoding="utf-8"))
    return {key: {lang: str(text) for lang, text in texts.items()} for key, texts in raw.items()}


def translate(language: str, key: str, **values: Any) -> str:
    texts = catalogue().get(key)
    if texts is None:
        return key
    text = texts.get(language) or texts["en"]
    return text.format(**values) if values else text


def translator(language: str) -> Translate:
    def t(key: str, **values: Any) -> str:
        return translate(language, key, **values)

    return t


def language_of(cookie: str | None, accept_language: str | None) -> str:
    """The officer's chosen language, else the browser's first preference we have, else Chinese."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE
