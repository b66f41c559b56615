r"""Serializes a run's inference function: `python -m instruments_jax.export --workdir=RUN --out=FILE`.

`--format=stablehlo` (the default) writes StableHLO from `jax.export` with the
weights inside: mono waveforms [batch, samples] at the run's sample rate in
(batch symbolic, samples one inference chunk), class probabilities
[batch, classes] out. It runs with jax alone, without this package:

    exported = jax.export.deserialize(open(FILE, "rb").read())
    probs = exported.call(waveforms)

`--format=keras` writes a native Keras 3 model file (FILE must end in .keras):
log-mel dB [batch, mel_bins, frames, 1] in (any number of frames), class
probabilities [batch, classes] out (the logits model plus a standard sigmoid or
softmax Activation, as the run's `train.loss`). It is float32 throughout, even
for a run that predicts in mixed bfloat16 (`keras_model` says why), and loads
without this package and without custom objects, on any Keras backend:

    model = keras.saving.load_model(FILE)
    probs = keras.ops.convert_to_numpy(model(log_mel))

The class names, the loss and the settings that make the input (all of
`config.audio`, the sample rate included, and `prediction.inference_chunk_seconds`)
travel inside the file, under the key "instruments_jax" of the archive's
metadata.json, which `keras.saving.load_model` never reads:

    import json, zipfile
    meta = json.loads(zipfile.ZipFile(FILE).read("metadata.json"))["instruments_jax"]
    meta["classes"]  # ["guitar", "drum", "violin", "piano"]: column i of the output

`keras_metadata(FILE)` returns that dict. Both formats also write their
description beside the artifact as FILE + ".json".
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile

FORMATS = ("stablehlo", "keras")
KERAS_METADATA_MEMBER = "metadata.json"  # keras' own member: keras_version, date_saved
KERAS_METADATA_KEY = "instruments_jax"  # our key inside it
ACTIVATIONS = {"bce": "sigmoid", "softmax": "softmax"}  # train.loss -> the keras Activation of its probabilities


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


def keras_model(clf):
  """Returns a float32 keras.Model of log-mel [batch, mel_bins, frames, 1] -> probabilities, with `clf.params`.

  The model is built anew in the float32 policy even when the run predicts in mixed
  bfloat16: the variables are float32 in both policies (only the compute dtype
  differs), float32 is the reference result that bfloat16 approximates for speed,
  and it runs on every backend and device (bfloat16 convolutions are slow or
  missing on CPUs and under the numpy backend).
  """
  import keras
  import numpy as np

  from instruments_jax.model import build_model

  logits_model = build_model(clf.config, mixed_precision=False, load_weights=False)
  for kind, variables in (("params", logits_model.trainable_variables),
                          ("model_state", logits_model.non_trainable_variables)):
    values = clf.params[kind]
    if len(values) != len(variables):
      raise ValueError(f"{kind}: the checkpoint has {len(values)} arrays, the model {len(variables)} variables")
    for variable, value in zip(variables, values):
      if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(f"{variable.path}: shape {tuple(variable.shape)}, the checkpoint's {tuple(value.shape)}")
      variable.assign(np.asarray(value, dtype=variable.dtype))
  probs = keras.layers.Activation(ACTIVATIONS[clf.config.train.loss], dtype="float32",
                                  name="probabilities")(logits_model.outputs[0])
  return keras.Model(logits_model.inputs[0], probs, name="instruments_classifier")  # one input, not a list


def keras_description(clf) -> dict:
  """Returns what a user of the .keras file needs besides the model: classes, loss, the input's settings."""
  from instruments_jax.data import features

  cfg = clf.config
  chunk = float(cfg.prediction.inference_chunk_seconds)
  return {"input": "log-mel dB float32 [batch, mel_bins, frames, 1] (librosa.power_to_db of "
                   "librosa.feature.melspectrogram with the audio settings here; any number of frames)",
          "input_shape": [None, int(cfg.audio.mel_bins), None, 1], "output": "probabilities [batch, classes]",
          "classes": list(clf.classes), "loss": cfg.train.loss, "activation": ACTIVATIONS[cfg.train.loss],
          "sample_rate": clf.sample_rate, "audio": cfg.audio.to_dict(), "inference_chunk_seconds": chunk,
          "inference_chunk_frames": features.input_shape(cfg.audio, chunk)[1], "dtype_policy": "float32",
          "step": int(clf.step)}


def save_keras(clf, path: str) -> dict:
  """Writes `keras_model(clf)` to `path` (.keras) with `keras_description(clf)` in its metadata; returns that."""
  import keras

  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"{path}: no such folder {folder}")
  description = keras_description(clf)
  model = keras_model(clf)
  with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
    plain, tagged = os.path.join(tmp, "plain.keras"), os.path.join(tmp, "tagged.keras")
    keras.saving.save_model(model, plain)
    # zipfile cannot rewrite a member in place: copy the archive, member by member, with ours added to metadata.json.
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(tagged, "w") as dst:
      for info in src.infolist():
        if info.filename == KERAS_METADATA_MEMBER:
          metadata = json.loads(src.read(info))
          metadata[KERAS_METADATA_KEY] = description
          dst.writestr(info, json.dumps(metadata, default=str))
        else:
          with src.open(info) as r, dst.open(info, "w") as w:
            shutil.copyfileobj(r, w, 1 << 20)
    os.replace(tagged, path)
  return description


def keras_metadata(path: str) -> dict:
  """Returns the description `--format=keras` stored in a .keras file: classes, loss, audio settings, ..."""
  with zipfile.ZipFile(path) as zf:
    metadata = json.loads(zf.read(KERAS_METADATA_MEMBER))
  if KERAS_METADATA_KEY not in metadata:
    raise ValueError(f"{path}: no {KERAS_METADATA_KEY!r} key in its {KERAS_METADATA_MEMBER}; "
                     f"not written by `python -m instruments_jax.export --format=keras`")
  return metadata[KERAS_METADATA_KEY]


def main(argv=None):
  import argparse

  p = argparse.ArgumentParser(prog="python -m instruments_jax.export", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--format", choices=FORMATS, default="stablehlo",
                 help="stablehlo: waveform -> probabilities for jax (default); keras: log-mel -> probabilities, .keras")
  p.add_argument("--chunk_seconds", type=float, default=None,
                 help="input length (default: the run's inference chunk); stablehlo only")
  a = p.parse_args(argv)
  if a.format == "keras":
    problem = None
    if not a.out.endswith(".keras"):
      problem = f"--out={a.out}: --format=keras writes a .keras file (keras.saving.load_model needs the suffix)"
    elif a.chunk_seconds is not None:
      problem = "--chunk_seconds applies to --format=stablehlo only: the keras model takes any number of frames"
    if problem:
      print(f"error: {problem}", file=sys.stderr)
      sys.exit(2)
  from instruments_jax import cli
  from instruments_jax.classifier import load_classifier

  with cli.clean_errors():
    clf = load_classifier(a.workdir)
  if a.format == "keras":
    with cli.clean_errors():
      description = save_keras(clf, a.out)
      with open(a.out + ".json", "w") as f:
        json.dump(description, f, indent=2, default=str)
    print(f"wrote {a.out} (log-mel [batch, {description['audio']['mel_bins']}, frames, 1] -> probabilities "
          f"[batch, {len(description['classes'])}], float32)", file=sys.stderr)
    return
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
