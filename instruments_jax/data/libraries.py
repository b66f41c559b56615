"""The sample libraries a config's embedded train mix needs, fetched where absent (what `make train` runs first).

    python -m instruments_jax.data.libraries --config=quick

prints, for each library engine that `data.synth_engines` names (fluid: FluidR3 GM, soundfonts.py;
freepats: FreePats, freepats.py), where it is, downloading Debian's package into the cache first
when it is nowhere on this machine. A config whose mix names no library needs nothing.
"""

from __future__ import annotations

import argparse


ENGINES = ("fluid", "freepats")  # the sound engines that play a sample library this machine must hold


def module(engine: str):
  """The module of a library engine (soundfonts.py for fluid, freepats.py): its path, fetch, check and preset."""
  from instruments_jax.data import freepats, soundfonts

  return {"fluid": soundfonts, "freepats": freepats}[engine]


def needed(engines: str) -> list[str]:
  """The library engines of a comma-separated engine list, in its order."""
  return [e for e in engines.split(",") if e in ENGINES]


def ensure(engines: str) -> dict:
  """Maps each library engine of `engines` to its path, fetched where absent; raises SoundfontUnavailable."""
  return {e: module(e).fetch() for e in needed(engines)}


def main(argv=None):
  from instruments_jax.configs import get_config
  from instruments_jax.data import soundfonts

  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--config", required=True, help="a named config (quick, baseline, ...)")
  args = ap.parse_args(argv)
  try:
    found = ensure(get_config(args.config).data.synth_engines)
  except (ValueError, soundfonts.SoundfontUnavailable) as e:
    raise SystemExit(f"error: {e}") from None
  for engine, where in found.items():
    print(f"{engine}: {where}")


if __name__ == "__main__":
  main()
