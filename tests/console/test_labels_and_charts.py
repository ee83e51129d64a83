"""The message catalogue covers every label the pages use, in both languages; charts scale honestly."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from exchange.console.charts import BAR_AREA, bar_chart
from exchange.console.i18n import catalogue, language_of, translate

TEMPLATES = files("exchange.console").joinpath("templates")
LITERAL_KEY = re.compile(r"""t\(['"]([a-z_]+\.[a-z_]+)['"]""")
CHOSEN_KEY = re.compile(r"""['"]([a-z_]+\.[a-z_]+)['"] (?:if|else)\b|else ['"]([a-z_]+\.[a-z_]+)['"]""")
# Keys built from values: every value the pages can show needs its label.
BUILT = {
    "sharing_type": ["unconditional", "conditional", "none"],
    "cycle": ["realtime", "daily", "weekly", "monthly", "quarterly", "semiannual", "yearly"],
    "status": ["pending", "granted", "partially_granted", "rejected"],
    "element_state": ["pending", "granted", "rejected"],
    "history": ["added", "updated", "removed"],
    "discrepancy_status": ["open", "confirmed", "corrected", "withdrawn"],
    "outcome": ["allowed", "denied", "error"],
    "audit": [
        "department",
        "client_id",
        "officer",
        "action",
        "resource",
        "subject_id",
        "element",
        "purpose",
        "case",
    ],
    "sign_in": ["refused", "locked", "stale"],
}


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for template in TEMPLATES.iterdir():
        text = template.read_text(encoding="utf-8")
        keys |= set(LITERAL_KEY.findall(text))
        keys |= {k for pair in CHOSEN_KEY.findall(text) for k in pair if k}
    keys |= {f"{prefix}.{value}" for prefix, values in BUILT.items() for value in values}
    return keys


def test_every_label_the_pages_use_is_in_the_catalogue_in_chinese_and_english() -> None:
    used = _used_keys()
    assert len(used) > 150
    missing = sorted(used - catalogue().keys())
    assert missing == []
    for key in used:
        assert catalogue()[key]["en"].strip(), key
        assert catalogue()[key]["zh"].strip(), key


def test_labels_fall_back_to_english_and_fill_their_placeholders() -> None:
    assert translate("zh", "nav.catalog") == "资源目录"
    assert translate("en", "nav.catalog") == "Catalogue"
    assert translate("fr", "nav.catalog") == "Catalogue"
    assert translate("en", "audit.results", n=3) == "3 events"
    assert translate("zh", "no.such_key") == "no.such_key"


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "zh"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "fr-FR, zh-CN;q=0.8", "zh"),
        ("en", "zh-CN", "en"),
        ("klingon", "en-US", "en"),
    ],
)
def test_the_language_is_the_officers_choice_then_the_browsers(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert language_of(cookie, header) == expected


def test_bars_scale_to_the_largest_value_and_shares_to_one_hundred_percent() -> None:
    counts = bar_chart([("a", 50), ("b", 100), ("c", 0)])
    assert [bar.width for bar in counts.bars] == [BAR_AREA // 2, BAR_AREA, 0]
    assert [bar.shown for bar in counts.bars] == ["50", "100", "0"]
    assert [bar.y for bar in counts.bars] == [0, 24, 48]
    shares = bar_chart([("x", 0.25), ("y", 1.0)], percent=True)
    assert [bar.width for bar in shares.bars] == [BAR_AREA // 4, BAR_AREA]
    assert [bar.shown for bar in shares.bars] == ["25.0%", "100.0%"]
    assert bar_chart([]).bars == []
    assert [bar.width for bar in bar_chart([("neg", -5), ("z", 0)]).bars] == [0, 0]
