"""The data layer: datasets, decoding, features, the embedded set, the input pipeline."""

import os


def default_root() -> str:
  """Where caches live: $INSTRUMENTS_JAX_CACHE, else $XDG_CACHE_HOME/instruments_jax, else ~/.cache/instruments_jax.

  Here rather than in cache.py so that soundfonts.py, which cache.py's synth hash reads, can use it
  without an import cycle.
  """
  if os.environ.get("INSTRUMENTS_JAX_CACHE"):
    return os.environ["INSTRUMENTS_JAX_CACHE"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "instruments_jax")
