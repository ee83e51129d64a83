"""Generating a plausible 赤峰市 (pure, deterministic for a seed).

Identifiers are valid: 公民身份号码 with real GB/T 2260 county codes of 赤峰市, a birth date and a sex digit
that agree with the record, and the ISO 7064 check character; 统一社会信用代码 with the GB 32100 check
character. Some people (and their addresses) carry Mongolian-script names. Other departments' reports of
the same people are generated too, with a known share of them in conflict with the canonical values.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from stdnum.cn import ric, uscc

# GB/T 2260: the counties of 赤峰市 (150400), with a rough share of the population.
COUNTIES = {
    "150402": ("红山区", 14),
    "150403": ("元宝山区", 8),
    "150404": ("松山区", 13),
    "150421": ("阿鲁科尔沁旗", 6),
    "150422": ("巴林左旗", 7),
    "150423": ("巴林右旗", 4),
    "150424": ("林西县", 5),
    "150425": ("克什克腾旗", 5),
    "150426": ("翁牛特旗", 9),
    "150428": ("喀喇沁旗", 7),
    "150429": ("宁城县", 12),
    "150430": ("敖汉旗", 10),
}
ROADS = [
    "昭乌达路",
    "哈达街",
    "钢铁街",
    "临潢大街",
    "新华路",
    "全宁路",
    "玉龙大街",
    "富河街",
    "锦山路",
    "天义路",
]
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰志红建国海燕春梅文利民"
# Mongolian given names: as written in Chinese, and in Mongolian script.
MONGOLIAN = [
    ("巴特尔", "ᠪᠠᠭᠠᠲᠤᠷ"),
    ("其木格", "ᠴᠢᠮᠡᠭ"),
    ("苏日娜", "ᠰᠤᠷᠤᠨᠠ"),
    ("额尔敦", "ᠡᠷᠳᠡᠨᠢ"),
    ("乌云", "ᠤᠶᠤᠨ"),
    ("斯琴", "ᠰᠡᠴᠡᠨ"),
    ("朝鲁", "ᠴᠢᠯᠠᠭᠤ"),
    ("娜仁", "ᠨᠠᠷᠠᠨ"),
]
TRADES = ["商贸", "农牧业", "建筑工程", "餐饮", "物流", "科技", "矿业", "旅游", "医药", "乳业"]
FORMS = [("有限公司", "21"), ("有限责任公司", "21"), ("个体工商户", "31"), ("农民专业合作社", "33")]
CENTRE = (118.888, 42.258)  # 赤峰市 红山区


@dataclass(slots=True)
class Chunk:
    """A slice of the city, by publishing department, in the order to apply it."""

    persons: list[dict[str, Any]]  # 公安: the canonical person records
    civil_affairs: list[dict[str, Any]]  # 民政: marital status (its own), and reports of addresses
    social_security: list[dict[str, Any]]  # 人社: insurance status (its own), and reports of phones
    entities: list[dict[str, Any]]  # 市场监管
    addresses: list[dict[str, Any]]  # 民政: standard addresses
    locations: list[dict[str, Any]]  # 自然资源: their coordinates
    conflicts: int  # reports in this chunk that disagree with the canonical value, by construction


def _weighted_county(rng: random.Random) -> str:
    codes = list(COUNTIES)
    return rng.choices(codes, weights=[COUNTIES[c][1] for c in codes])[0]


def person_id(rng: random.Random, seen: set[str]) -> tuple[str, date, str]:
    while True:
        county = _weighted_county(rng)
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 84))
        serial = rng.randrange(0, 1000)
        body = f"{county}{born:%Y%m%d}{serial:03d}"
        number = body + ric.calc_check_digit(body + "0")
        if number not in seen:
            seen.add(number)
            return number, born, county


def entity_code(rng: random.Random, seen: set[str]) -> str:
    while True:
        body = f"91{_weighted_county(rng)}{rng.randrange(0, 10**9):09d}"
        code = body + uscc.calc_check_digit(body)
        if code not in seen:
            seen.add(code)
            return code


def _address(rng: random.Random, county: str) -> str:
    return f"内蒙古自治区赤峰市{COUNTIES[county][0]}{rng.choice(ROADS)}{rng.randint(1, 399)}号"


def generate(
    persons: int, seed: int = 2026, conflict_share: float = 0.05, chunk: int = 2000
) -> Iterator[Chunk]:
    """The city in chunks of ``chunk`` people (memory stays flat for millions)."""
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    seen: set[str] = set()
    seen_entities: set[str] = set()
    addresses = 0
    for start in range(0, persons, chunk):
        part = Chunk([], [], [], [], [], [], 0)
        for _ in range(min(chunk, persons - start)):
            _person(rng, seen, part, conflict_share)
        part.entities = list(_entities(rng, max(len(part.persons) // 20, 1), part.persons, seen_entities))
        part.addresses = list(_addresses(rng, addresses, max(len(part.persons) // 10, 1)))
        addresses += len(part.addresses)
        part.locations = [
            {"subject_id": a["subject_id"], "fields": {"location": point}}
            for a, point in zip(part.addresses, _points(rng, len(part.addresses)), strict=True)
        ]
        yield part


def _person(rng: random.Random, seen: set[str], part: Chunk, conflict_share: float) -> None:
    number, born, county = person_id(rng, seen)
    sex = "1" if int(number[16]) % 2 else "2"
    fields: dict[str, Any] = {
        "sex": sex,
        "birth_date": born.isoformat(),
        "household_division": county,
        "household_address": _address(rng, county),
        "household_status": "1",
        "phone": _phone(rng),
    }
    if rng.random() < 0.12:
        chinese, script = rng.choice(MONGOLIAN)
        fields |= {"name": chinese, "name_mongolian": script, "ethnicity": "02"}
    else:
        given = "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
        fields |= {"name": rng.choice(SURNAMES) + given, "ethnicity": "01" if rng.random() < 0.9 else "03"}
    part.persons.append({"subject_id": number, "fields": fields})
    adult = born.year <= 2006
    reported: dict[str, Any] = {}
    if adult:
        reported["marital_status"] = rng.choice(["10", "20", "20", "20", "30", "40"])
    if rng.random() < 0.3:
        wrong = rng.random() < conflict_share
        part.conflicts += wrong
        reported["household_address"] = _address(rng, county) if wrong else fields["household_address"]
    if reported:
        part.civil_affairs.append({"subject_id": number, "fields": reported})
    if adult and rng.random() < 0.6:
        insured: dict[str, Any] = {"social_insurance_status": rng.choice(["1", "1", "1", "2", "0"])}
        if rng.random() < 0.2:
            wrong = rng.random() < conflict_share
            part.conflicts += wrong
            insured["phone"] = _phone(rng) if wrong else fields["phone"]
        part.social_security.append({"subject_id": number, "fields": insured})


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randrange(0, 10**9):09d}"


def _entities(
    rng: random.Random, count: int, people: list[dict[str, Any]], seen: set[str]
) -> Iterator[dict[str, Any]]:
    for _ in range(count):
        county = _weighted_county(rng)
        form, kind = rng.choice(FORMS)
        owner = rng.choice(people)
        name = f"赤峰{rng.choice(SURNAMES)}{rng.choice(GIVEN)}{rng.choice(TRADES)}{form}"
        yield {
            "subject_id": entity_code(rng, seen),
            "fields": {
                "name": name,
                "entity_type": kind,
                "registered_address": _address(rng, county),
                "registered_division": county,
                "establishment_date": (
                    date(1995, 1, 1) + timedelta(days=rng.randrange(0, 365 * 30))
                ).isoformat(),
                "status": rng.choice(["1", "1", "1", "1", "2", "3"]),
                "legal_representative": owner["fields"]["name"],
                "legal_representative_id": owner["subject_id"],
                "registered_capital": f"{rng.randint(1, 5000)}.{rng.randint(0, 9999):04d}",
            },
        }


def _addresses(rng: random.Random, first: int, count: int) -> Iterator[dict[str, Any]]:
    for n in range(first, first + count):
        county = _weighted_county(rng)
        road, number = rng.choice(ROADS), rng.randint(1, 399)
        fields: dict[str, Any] = {
            "full_address": f"内蒙古自治区赤峰市{COUNTIES[county][0]}{road}{number}号",
            "division_code": county,
            "road": road,
            "address_status": "1",
        }
        yield {"subject_id": f"{county}{n:08d}", "fields": fields}


def _points(rng: random.Random, count: int) -> Iterator[dict[str, Any]]:
    for _ in range(count):
        lon = CENTRE[0] + rng.uniform(-0.08, 0.08)
        lat = CENTRE[1] + rng.uniform(-0.05, 0.05)
        yield {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
