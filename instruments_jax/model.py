"""ResNet50 from keras.applications on log-mel input: 1-channel stem, average pooling, one logit per class.

Weights (`config.model.weights`): "imagenet" downloads keras' own ImageNet file
through keras' own cache, a path loads a local Keras .h5 / .weights.h5 file of
a 3-channel (or already 1-channel) no-top ResNet50, "none" starts from random
initialisation. The 3-channel conv1 kernel becomes a 1-channel one by summing
over its input channels, as the recipe did.
"""

from __future__ import annotations

import math
import os

import instruments_jax  # noqa: F401  (selects the JAX backend before keras loads)
import keras
from keras.utils import get_file

from instruments_jax import musicnn
from instruments_jax.configs.schema import MUSICNN_AUDIO
from instruments_jax.data import sources

IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + IMAGENET_FILE
IMAGENET_HASH = "4d473c1dd8becc155b73f8504c6f6626"


CNN8_WIDTHS = (32, 64, 128, 256)  # model.width multiplies them


def cnn8(include_top=False, weights=None, input_shape=None, pooling="avg", widths=CNN8_WIDTHS):
  """A plain CNN for log-mels: four blocks of two 3x3 conv + BatchNorm + ReLU, 2x2 average pooling between.

  The VGG-like shape of the audio-tagging CNNs (PANNs' CNN6/CNN10), narrower and with a
  stride-2 first convolution: 1.2 M weights, about 8x the samples/s of ResNet50 at `quick`'s
  64 x 173 input on a 2-core CPU (experiments/RESULTS.md, "Issue 15, third round"). No
  pretrained weights exist for it; the signature is keras.applications' so BACKBONES serves both.
  """
  if include_top or weights is not None:
    raise ValueError("cnn8 has no classification top and no pretrained weights")
  inputs = keras.Input(input_shape)
  x = inputs
  for block, width in enumerate(widths):
    for conv in range(2):
      strides = 2 if block == conv == 0 else 1
      x = keras.layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False,
                              name=f"block{block + 1}_conv{conv + 1}")(x)
      x = keras.layers.BatchNormalization(name=f"block{block + 1}_bn{conv + 1}")(x)
      x = keras.layers.ReLU(name=f"block{block + 1}_relu{conv + 1}")(x)
    if block < len(widths) - 1:
      x = keras.layers.AveragePooling2D(2, padding="same", name=f"block{block + 1}_pool")(x)
  if pooling is None:  # the last feature map, as keras.applications gives it
    return keras.Model(inputs, x, name="cnn8")
  pool = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}[pooling]
  return keras.Model(inputs, pool(name="pool")(x), name="cnn8")


def panns_pool(x):
  """The head of PANNs' CNNs (Kong et al. 2020): the mean over frequency, then the max plus the mean over time.

  `x` is a backbone's last feature map [B, freq, time, C]. The max over time keeps the
  strongest moment (an onset, a pluck) that a mean over the whole map spreads thin; the
  mean keeps how the rest of the clip sounds. Built-in layers only, so a .keras export still
  opens without this package, and any number of frames goes through.
  """
  x = keras.layers.AveragePooling2D((x.shape[1], 1), name="frequency_mean")(x)  # [B, 1, time, C]
  return keras.layers.Add(name="time_max_plus_mean")([keras.layers.GlobalMaxPooling2D(name="time_max")(x),
                                                      keras.layers.GlobalAveragePooling2D(name="time_mean")(x)])


def cnn8_musicnn(include_top=False, weights=None, input_shape=None, pooling="avg", widths=CNN8_WIDTHS,
                 branch_dropout=0.0, musicnn_db=0.0):
  """cnn8 beside musicnn on one 96-band log-mel: their pooled features side by side [widths[-1] + 200].

  cnn8 learns our renderings from scratch; musicnn brings what it learnt from real recordings
  (MagnaTagATune), so the classifier can lean on either. `model.weights` and `model.freeze` act
  on the musicnn half (`pretrained`); cnn8 always trains. `branch_dropout` drops each sample's
  musicnn features whole in training at that rate (the kept ones scaled up, as any dropout), so
  the classifier also learns to classify from cnn8 alone.

  Given more than musicnn's 96 bands (`schema.MUSICNN_WIDE_AUDIO`: the same frames and band spacing at
  twice the sample rate), cnn8 hears them all and musicnn its first 96, `musicnn_db` added: the
  -20 log10 k dB that k times the STFT points put on the power.
  """
  if include_top or weights is not None:
    raise ValueError("cnn8+musicnn builds without a top; model.weights loads musicnn's checkpoint into its half")
  inputs = keras.Input(input_shape)
  scratch = cnn8(input_shape=input_shape, pooling=pooling, widths=widths)(inputs)
  x = inputs
  if input_shape[0] > musicnn.MEL_BINS:
    x = keras.layers.Cropping2D(((0, input_shape[0] - musicnn.MEL_BINS), (0, 0)), name="musicnn_bands")(x)
  if musicnn_db:
    x = keras.layers.Rescaling(1.0, offset=musicnn_db, dtype="float32", name="musicnn_level")(x)
  heard = musicnn.musicnn(input_shape=(musicnn.MEL_BINS, *input_shape[1:]))(x)
  if branch_dropout:
    heard = keras.layers.Dropout(branch_dropout, noise_shape=(None, 1), name="musicnn_dropout")(heard)
  return keras.Model(inputs, keras.layers.Concatenate(name="features")([scratch, heard]), name="cnn8_musicnn")


def pretrained(backbone: keras.Model) -> keras.Model:
  """The part of `backbone` that `model.weights` and `model.freeze` act on: cnn8+musicnn's musicnn half,
  or the whole backbone."""
  return backbone.get_layer("musicnn") if backbone.name == "cnn8_musicnn" else backbone


def _leaves(model: keras.Model):
  """Every layer of `model`, nested models' layers in place of the models."""
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _leaves(layer)
    else:
      yield layer


# model.backbone; configs.validate checks the name
BACKBONES = {"resnet50": keras.applications.ResNet50, "cnn8": cnn8, "musicnn": musicnn.musicnn,
             "cnn8+musicnn": cnn8_musicnn}


# Raised when keras' ImageNet file or musicnn's checkpoint can be neither downloaded nor found: one class,
# so the CLIs turn either into one clean error (cli.py).
WeightsUnavailable = musicnn.WeightsUnavailable


def keras_cache_path(fname: str = IMAGENET_FILE) -> str:
  """Returns where keras caches a downloaded model file."""
  home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
  return os.path.join(home, "models", fname)


def imagenet_weights_path() -> str:
  """Returns the cached ImageNet file, downloading it the way keras.applications does."""
  try:
    return get_file(IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_HASH)
  except Exception as e:
    raise WeightsUnavailable(
        f"cannot download the ImageNet ResNet50 weights from {IMAGENET_URL} ({type(e).__name__}: {e}).\n"
        f"keras caches that file at {keras_cache_path()}; copy it there, or choose another way out:\n"
        f"  --config.model.weights=/path/to/{IMAGENET_FILE}   (a local Keras .h5 file)\n"
        f"  --config.model.weights=none                       (random initialisation)") from None


def weights_path(weights: str) -> str | None:
  """Returns the file or checkpoint `model.weights` names (None for none), downloading keras' ImageNet file
  or musicnn's checkpoint on first use; raises WeightsUnavailable when that download fails."""
  if weights.lower() == "imagenet":
    return imagenet_weights_path()
  if weights.lower() == "musicnn":
    return musicnn.weights_path(keras_cache_path(musicnn.CACHE_NAME))
  if weights.lower() in ("none", ""):
    return None
  if not (os.path.isfile(weights) or musicnn.is_checkpoint(weights)):
    raise FileNotFoundError(f"model.weights={weights!r}: no such file")
  return weights


def build_model(cfg, input_shape: tuple | None = None, mixed_precision: bool | None = None,
                load_weights: bool = True) -> keras.Model:
  """Returns the classifier: log-mel [mels, frames, 1] in, one logit per class out (float32).

  `input_shape` defaults to (mel_bins, None, 1): any number of frames, so one model serves
  training chunks, inference chunks and `load_classifier(...).apply` on any length.
  `mixed_precision` defaults to `train.mixed_precision`; `load_weights=False` skips
  `model.weights` (the caller brings every weight, e.g. from a checkpoint).
  """
  input_shape = input_shape or (cfg.audio.mel_bins, None, 1)
  weights_file = weights_path(str(cfg.model.weights)) if load_weights else None
  if mixed_precision is None:
    mixed_precision = cfg.train.mixed_precision

  policy = "mixed_bfloat16" if mixed_precision else "float32"
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(policy)
  try:
    width = float(cfg.model.width)  # configs.validate: 1 unless cnn8
    sized = {"widths": tuple(round(w * width) for w in CNN8_WIDTHS)} if "cnn8" in cfg.model.backbone else {}
    if cfg.model.backbone == "cnn8+musicnn":
      sized["branch_dropout"] = float(cfg.model.branch_dropout)  # configs.validate: 0 for any other backbone
      k = cfg.audio.sample_rate / MUSICNN_AUDIO["audio.sample_rate"]  # configs.validate: musicnn's frames at k times its rate
      sized["musicnn_db"] = -20 * math.log10(k)
    pool = cfg.model.pool  # panns: the backbone gives its feature map, and panns_pool pools it here
    backbone = BACKBONES[cfg.model.backbone](include_top=False, weights=None, input_shape=input_shape,
                                           pooling=None if pool == "panns" else pool, **sized)
    inputs = keras.Input(input_shape, name="log_mel")
    x = inputs
    if cfg.audio.spectrogram_normalization == "frequency":
      # Each mel bin standardized over the chunk's frames: a microphone's or room's fixed EQ
      # curve is a constant offset per bin in dB, and goes. A built-in layer, so a .keras
      # export still opens without this package; epsilon 1 dB^2 keeps near-constant bins
      # (silence at the floor) from being blown up to unit variance.
      x = keras.layers.LayerNormalization(axis=2, center=False, scale=False, epsilon=1.0, dtype="float32",
                                          name="frequency_normalization")(x)
    x = backbone(x)
    if pool == "panns":
      x = panns_pool(x)
    if cfg.model.dropout > 0:
      x = keras.layers.Dropout(cfg.model.dropout, name="dropout")(x)
    head = keras.layers.Dense(len(sources.class_names(cfg)), dtype="float32", name="logits")
    logits = head(x)
  finally:
    keras.config.set_dtype_policy(previous)
  if cfg.model.bn_momentum:
    # keras' 0.99 averages BatchNorm statistics over ~100 steps: fine for long runs, but
    # in a run of a few hundred steps from scratch the averages lag the weights.
    for layer in _leaves(backbone):
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.momentum = float(cfg.model.bn_momentum)
  if weights_file is not None:
    load_backbone_weights(pretrained(backbone) if musicnn.is_checkpoint(weights_file) else backbone, weights_file)
  if cfg.model.head_init == "tags" and weights_file is not None:  # configs.validate: musicnn alone
    head.set_weights(musicnn.tag_head(weights_file, sources.class_names(cfg), head.get_weights()))
  if cfg.model.freeze != "none":
    # Keras runs a frozen BatchNorm in inference mode, so the pretrained statistics stay, and the
    # step's gradient reaches no frozen weight: XLA drops the backward pass through them.
    keep = musicnn.BACKEND if cfg.model.freeze == "features" else ()  # configs.validate: features is musicnn's
    for layer in pretrained(backbone).layers:
      if layer.name not in keep:
        layer.trainable = False
        if isinstance(layer, keras.layers.Dropout):
          layer.rate = 0.0  # a frozen part is a fixed feature extractor: Keras keeps dropout on whatever trainable says
  return keras.Model(inputs, logits, name=f"instruments_{backbone.name}")


def load_backbone_weights(backbone: keras.Model, path: str) -> None:
  """Loads a no-top ResNet50 weights file into `backbone`, summing conv1 over RGB when needed;
  another backbone loads a file saved from itself (`backbone.save_weights`)."""
  channels = backbone.input_shape[-1]
  if backbone.name == "musicnn" and musicnn.is_checkpoint(path):
    musicnn.load_weights(backbone, path)
    return
  if backbone.name != "resnet50":
    try:
      backbone.load_weights(path)
      return
    except Exception as e:
      raise ValueError(f"cannot load {backbone.name} weights from {path!r}: {e}") from None
  try:
    source = keras.applications.ResNet50(include_top=False, weights=path, input_shape=(32, 32, 3))
  except Exception as e3:
    try:  # perhaps a file saved from a 1-channel backbone
      backbone.load_weights(path)
      return
    except Exception:
      raise ValueError(f"cannot load ResNet50 weights from {path!r}: {e3}") from None
  for layer in backbone.layers:
    if not layer.weights:
      continue
    values = source.get_layer(layer.name).get_weights()
    if layer.name == "conv1_conv" and channels == 1:
      values = [values[0].sum(axis=2, keepdims=True)] + values[1:]  # [7, 7, 3, 64] -> [7, 7, 1, 64]
    layer.set_weights(values)
