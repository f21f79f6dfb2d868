"""Settings: config/neodefense.toml, then the file in $NEODEFENSE_CONFIG, then environment variables."""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

#: environment variable → (section, key)
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "NEODEFENSE_DATA_DIR": ("paths", "data_dir"),
    "NEODEFENSE_CATALOG_URL": ("catalog", "url"),
    "NEODEFENSE_DASK_ADDRESS": ("dask", "address"),
    "PREFECT_API_URL": ("prefect", "api_url"),
    "NEODEFENSE_SMTP_HOST": ("alerts.smtp", "host"),
    "NEODEFENSE_SMTP_PORT": ("alerts.smtp", "port"),
    "NEODEFENSE_SMTP_USER": ("alerts.smtp", "user"),
    "NEODEFENSE_SMTP_PASSWORD": ("alerts.smtp", "password"),
    "NEODEFENSE_API_HOST": ("api", "host"),
    "NEODEFENSE_API_PORT": ("api", "port"),
}


def default_config_path() -> Path:
    """The project's defaults: ./config/neodefense.toml, else the one beside the source tree."""
    here = Path.cwd() / "config" / "neodefense.toml"
    if here.is_file():
        return here
    source_tree = Path(__file__).resolve().parents[2] / "config" / "neodefense.toml"
    if source_tree.is_file():
        return source_tree
    raise FileNotFoundError(
        "config/neodefense.toml not found (looked in the working directory and beside the source "
        "tree); set NEODEFENSE_CONFIG to a settings file"
    )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class Settings:
    raw: dict[str, Any]

    def get(self, section: str, key: str) -> Any:
        return self.raw[section][key]

    @property
    def data_dir(self) -> Path:
        return Path(self.raw["paths"]["data_dir"]).expanduser().resolve()

    @property
    def catalog_url(self) -> str:
        url = self.raw["catalog"]["url"]
        return url or f"sqlite:///{self.data_dir / 'catalog.sqlite'}"

    def _under_data(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def inbox_root(self) -> Path:
        return self._under_data(self.raw["inbox"]["root"])

    @property
    def processed_dir(self) -> Path:
        return self._under_data(self.raw["inbox"]["processed"])

    @property
    def quarantine_dir(self) -> Path:
        return self._under_data(self.raw["inbox"]["quarantine"])

    @property
    def dask_address(self) -> str:
        return self.raw["dask"]["address"]

    def with_overrides(self, **section_keys: dict[str, Any]) -> Settings:
        return Settings(_merge(self.raw, section_keys))


def load(path: str | os.PathLike | None = None) -> Settings:
    """Defaults, then ``path`` or $NEODEFENSE_CONFIG, then environment variables."""
    with open(default_config_path(), "rb") as fh:
        raw = tomllib.load(fh)
    extra_path = path or os.environ.get("NEODEFENSE_CONFIG")
    if extra_path:
        with open(extra_path, "rb") as fh:
            raw = _merge(raw, tomllib.load(fh))
    for var, (section, key) in ENVIRONMENT.items():
        if os.environ.get(var):
            table = raw
            for part in section.split("."):  # "alerts.smtp" is [alerts.smtp]
                table = table.setdefault(part, {})
            table[key] = os.environ[var]
    return Settings(raw)


def apply_prefect_environment(settings: Settings) -> None:
    """Point Prefect at the configured server, or keep its embedded state inside data_dir.

    Must run before ``prefect`` is imported. With no server configured Prefect starts a temporary
    local API on SQLite; giving it its own home under data_dir keeps runs independent of
    ``~/.prefect``, and analytics are off (no network here, and its writes contend for SQLite).
    """
    api_url = settings.raw.get("prefect", {}).get("api_url", "")
    if api_url:
        os.environ.setdefault("PREFECT_API_URL", api_url)
    else:
        os.environ.setdefault("PREFECT_HOME", str(settings.data_dir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the embedded server may take longer than Prefect's default 20 s to start on a busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("DO_NOT_TRACK", "1")
