"""Where ``exchange-client`` finds the hub and its credentials: options, a profile, the environment.

A value given as an option wins; then the profile named by ``--profile`` (or ``EXCHANGE_PROFILE``); then
``EXCHANGE_URL``, ``EXCHANGE_CLIENT_ID``, ``EXCHANGE_CLIENT_SECRET``, ``EXCHANGE_KEY_FILE``. Profiles live in
``EXCHANGE_PROFILES`` or ``~/.config/exchange-client/profiles.toml``, one section per profile::

    [civil-affairs]
    url = "https://exchange.example.gov.cn"
    client_id = "cl_…"
    key_file = "civil-affairs.jwk.json"   # or client_secret = "cs_…"; relative to this file
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEYS = ("url", "client_id", "client_secret", "key_file")
ENVIRONMENT = {key: f"EXCHANGE_{key.upper()}" for key in KEYS}


class ConfigError(ValueError):
    """The hub or the credentials could not be determined."""


@dataclass(frozen=True, slots=True)
class Connection:
    url: str
    client_id: str
    client_secret: str | None = None
    key_file: Path | None = None


def profiles_file(environ: Mapping[str, str]) -> Path:
    if environ.get("EXCHANGE_PROFILES"):
        return Path(environ["EXCHANGE_PROFILES"]).expanduser()
    config_home = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "exchange-client" / "profiles.toml"


def read_profile(path: Path, name: str) -> dict[str, str]:
    """One profile's settings; a relative ``key_file`` is taken relative to the profiles file."""
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"profile {name!r} asked for, but there is no profiles file {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the profiles file {path}: {exc}") from None
    section = profiles.get(name)
    if not isinstance(section, dict):
        known = ", ".join(sorted(k for k, v in profiles.items() if isinstance(v, dict))) or "none"
        raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})")
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise ConfigError(f"profile {name!r} in {path}: unknown settings {', '.join(unknown)}")
    settings = {key: str(value) for key, value in section.items()}
    if "key_file" in settings:
        settings["key_file"] = str(path.parent / Path(settings["key_file"]).expanduser())
    return settings


def resolve(
    options: Mapping[str, str | None], profile: str | None, environ: Mapping[str, str] = os.environ
) -> Connection:
    """The connection from options, then the profile, then the environment.

    The credential (a secret or a key file) comes whole from the first of these that gives one, so an
    option or a profile never mixes with a credential of another kind from the environment.
    """
    layers = [{k: v for k, v in options.items() if v}]
    if profile:
        layers.append(read_profile(profiles_file(environ), profile))
    layers.append({key: environ[variable] for key, variable in ENVIRONMENT.items() if environ.get(variable)})

    def first(key: str) -> str | None:
        return next((layer[key] for layer in layers if layer.get(key)), None)

    url, client_id = first("url"), first("client_id")
    credential = next((layer for layer in layers if layer.get("client_secret") or layer.get("key_file")), {})
    missing = [
        f"--{name.replace('_', '-')} or {ENVIRONMENT[name]}"
        for name, value in (("url", url), ("client_id", client_id))
        if not value
    ]
    if not credential:
        missing.append("--client-secret / EXCHANGE_CLIENT_SECRET or --key-file / EXCHANGE_KEY_FILE")
    if missing:
        raise ConfigError("no " + "; no ".join(missing) + " (or a --profile that has them)")
    if credential.get("client_secret") and credential.get("key_file"):
        raise ConfigError("give a client secret or a key file, not both")
    assert url is not None
    assert client_id is not None
    key_file = credential.get("key_file")
    return Connection(url, client_id, credential.get("client_secret"), Path(key_file) if key_file else None)
