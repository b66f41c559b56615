"""Named configs: `get_config(name)` returns an ml_collections.ConfigDict."""

import importlib

NAMES = ("baseline", "quick", "strong", "smoke")


def get_config(name: str):
  """Returns the named config (baseline, quick, smoke)."""
  if name not in NAMES:
    raise ValueError(f"unknown config {name!r}; choose one of {', '.join(NAMES)}")
  return importlib.import_module(f"instruments_jax.configs.{name}").get_config()
