"""Rendering pages: one Jinja2 environment (autoescaped), the labels of the officer's language, times shown
in the city's time zone."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from exchange.console.charts import bar_chart
from exchange.console.i18n import language_of, translator

CITY_TIME = ZoneInfo("Asia/Shanghai")
LANGUAGE_COOKIE = "exchange_lang"


def local_time(value: datetime | None, with_time: bool = True) -> str:
    if value is None:
        return "—"
    local = value.astimezone(CITY_TIME)
    return local.strftime("%Y-%m-%d %H:%M") if with_time else local.strftime("%Y-%m-%d")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("exchange.console", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
    env.filters["local_time"] = local_time
    env.filters["percent"] = percent
    env.globals["bar_chart"] = bar_chart
    return env


def language(request: Request) -> str:
    return language_of(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    active = getattr(request.state, "console", None)
    roles = frozenset(active.officer.roles) if active is not None else frozenset()
    page = (
        environment()
        .get_template(template)
        .render(
            request=request,
            t=translator(lang),
            lang=lang,
            officer=active.officer if active is not None else None,
            roles=roles,
            may=lambda *wanted: bool(roles & set(wanted)),
            csrf_token=active.csrf_token if active is not None else context.pop("csrf_token", ""),
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(page, status_code=status_code)
