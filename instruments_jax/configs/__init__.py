"""Named configs: `get_config(name)` returns an ml_collections.ConfigDict; schema.py checks and documents them."""

import importlib

from instruments_jax.configs.schema import (FIELDS, RESUME_SAFE, ConfigError, changed_on_resume, describe,
                                            suggest, validate)

NAMES = ("baseline", "quick", "strong", "musicnn", "smoke")

__all__ = ["FIELDS", "NAMES", "RESUME_SAFE", "ConfigError", "changed_on_resume", "describe", "get_config", "suggest", "validate"]


def get_config(name: str):
  """Returns the named config (baseline, quick, strong, musicnn or smoke)."""
  if name not in NAMES:
    raise ValueError(f"unknown config {name!r}; choose one of {', '.join(NAMES)}")
  return importlib.import_module(f"instruments_jax.configs.{name}").get_config()
