r"""Serializes a run's inference function: `python -m instruments_jax.export --workdir=RUN --out=FILE`.

The artifact is StableHLO from `jax.export` with the weights inside: mono
waveforms [batch, samples] at the run's sample rate in (batch symbolic, samples
one inference chunk), class probabilities [batch, classes] out. It runs with
jax alone, without this package:

    exported = jax.export.deserialize(open(FILE, "rb").read())
    probs = exported.call(waveforms)
"""

from __future__ import annotations

import json
import sys


def export_classifier(clf, chunk_seconds: float | None = None):
  """Returns the jax.export.Exported of waveform -> probabilities for one inference chunk."""
  import jax
  import jax.numpy as jnp

  cfg = clf.config
  seconds = chunk_seconds or cfg.prediction.inference_chunk_seconds
  samples = int(round(seconds * cfg.audio.sample_rate))
  params = clf.params
  (batch,) = jax.export.symbolic_shape("batch")
  fn = jax.jit(lambda waveform: clf.apply(params, waveform))
  return jax.export.export(fn)(jax.ShapeDtypeStruct((batch, samples), jnp.float32))


def main(argv=None):
  import argparse

  p = argparse.ArgumentParser(prog="python -m instruments_jax.export", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--chunk_seconds", type=float, default=None, help="input length (default: the run's inference chunk)")
  a = p.parse_args(argv)
  from instruments_jax import cli
  from instruments_jax.classifier import load_classifier

  with cli.clean_errors():
    clf = load_classifier(a.workdir)
  exported = export_classifier(clf, a.chunk_seconds)
  with open(a.out, "wb") as f:
    f.write(exported.serialize())
  with open(a.out + ".json", "w") as f:
    json.dump({"input": "mono float32 waveform [batch, samples]", "samples": exported.in_avals[0].shape[1],
               "sample_rate": clf.sample_rate, "output": "probabilities [batch, classes]",
               "classes": list(clf.classes), "loss": clf.config.train.loss}, f, indent=2, default=str)
  print(f"wrote {a.out} ({exported.in_avals[0]} -> {exported.out_avals[0]})", file=sys.stderr)


if __name__ == "__main__":
  main()
