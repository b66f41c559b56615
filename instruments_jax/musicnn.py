"""musicnn (Pons & Serra 2019) in Keras 3, with its MagnaTagATune weights read without TensorFlow.

The `musicnn` wheel on PyPI (ISC licence) ships the weights its authors trained on 25 863
real music excerpts (MagnaTagATune: 50 tags, among them guitar, piano, drums, violin,
strings, harpsichord) as TensorFlow 1 checkpoints. `read_checkpoint` reads such a
checkpoint's table and data shard with numpy alone; `musicnn` builds the same network
from built-in Keras layers; `load_weights` maps one onto the other. The network takes
log-mels made the way it was trained (16 kHz, 512-point frames, hop 256, 96 Slaney mel
bands) and compressed as log10(1 + 10000 x): `musicnn` gets our dB log-mel and converts
it with built-in layers, so a .keras export still opens without this package.
"""

from __future__ import annotations

import glob
import math
import os
import struct

import numpy as np

import instruments_jax  # noqa: F401  (selects the JAX backend before keras loads)
import keras

# The network's height; the whole front end its weights were trained on (musicnn/configuration.py) is
# configs.schema.MUSICNN_AUDIO, which validate holds a config to and configs/musicnn.py sets.
MEL_BINS = 96
MTT_LABELS = ("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
              "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
              "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal",
              "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
              "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
              "choral")
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}  # TF's DataType enum


# ---------------------------------------------------------------------------------------------
# A TensorFlow checkpoint (tensor bundle): a LevelDB-format table of name -> BundleEntryProto,
# and the tensors' raw bytes in data shards.

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
  shift = result = 0
  while True:
    b = buf[pos]
    pos += 1
    result |= (b & 0x7F) << shift
    if b < 0x80:
      return result, pos
    shift += 7


def _block(buf: bytes, offset: int, size: int, path: str) -> list[tuple[bytes, bytes]]:
  """Returns a table block's (key, value) entries (keys are prefix-compressed)."""
  if buf[offset + size] != 0:
    raise ValueError(f"{path}: block at {offset} is compressed (type {buf[offset + size]}); only raw blocks are read")
  data = buf[offset:offset + size]
  restarts = struct.unpack_from("<I", data, len(data) - 4)[0]
  end, pos, key, entries = len(data) - 4 - 4 * restarts, 0, b"", []
  while pos < end:
    shared, pos = _varint(data, pos)
    unshared, pos = _varint(data, pos)
    length, pos = _varint(data, pos)
    key = key[:shared] + data[pos:pos + unshared]
    pos += unshared
    entries.append((key, data[pos:pos + length]))
    pos += length
  return entries


def _fields(msg: bytes) -> dict[int, list]:
  """Returns a protobuf message's fields by number (varints as ints, the rest as bytes)."""
  out, pos = {}, 0
  while pos < len(msg):
    tag, pos = _varint(msg, pos)
    number, wire = tag >> 3, tag & 7
    if wire == 0:
      value, pos = _varint(msg, pos)
    elif wire == 2:
      length, pos = _varint(msg, pos)
      value, pos = msg[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = msg[pos:pos + 4], pos + 4
    elif wire == 1:
      value, pos = msg[pos:pos + 8], pos + 8
    else:
      raise ValueError(f"protobuf wire type {wire} not handled")
    out.setdefault(number, []).append(value)
  return out


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
  """Returns every tensor of the TensorFlow checkpoint at `prefix` (`prefix.index`, `prefix.data-*`)."""
  index_path = prefix + ".index"
  try:
    with open(index_path, "rb") as f:
      buf = f.read()
  except OSError as e:
    raise ValueError(f"cannot read checkpoint index {index_path!r}: {e.strerror}") from None
  if len(buf) < 48 or buf[-8:] != struct.pack("<Q", 0xdb4775248b80fb57):
    raise ValueError(f"{index_path}: not a TensorFlow checkpoint index (no table footer)")
  pos = len(buf) - 48
  _, pos = _varint(buf, pos)  # the metaindex block: unused
  _, pos = _varint(buf, pos)
  index_offset, pos = _varint(buf, pos)
  index_size, pos = _varint(buf, pos)
  entries = []
  for _, handle in _block(buf, index_offset, index_size, index_path):
    offset, p = _varint(handle, 0)
    size, _ = _varint(handle, p)
    entries += _block(buf, offset, size, index_path)
  shards = {}
  tensors = {}
  for key, value in entries:
    if not key:  # the bundle header
      continue
    f = _fields(value)
    if 7 in f:
      raise ValueError(f"{index_path}: tensor {key.decode()!r} is stored in slices; not handled")
    dtype = _DTYPES[f.get(1, [1])[0]]
    shape = tuple(_fields(d).get(1, [0])[0] for d in _fields(f[2][0]).get(2, [])) if 2 in f else ()
    shard, offset, size = f.get(3, [0])[0], f.get(4, [0])[0], f.get(5, [0])[0]
    if shard not in shards:
      names = glob.glob(f"{glob.escape(prefix)}.data-{shard:05d}-of-*")
      if not names:
        raise ValueError(f"{prefix}: data shard {shard} is missing")
      shards[shard] = np.memmap(names[0], dtype=np.uint8, mode="r")
    raw = shards[shard][offset:offset + size]
    if raw.size != size:
      raise ValueError(f"{prefix}: tensor {key.decode()!r} runs past the end of its data shard")
    tensors[key.decode()] = np.frombuffer(raw.tobytes(), dtype).reshape(shape)
  return tensors


# ---------------------------------------------------------------------------------------------
# The network, as musicnn/models.py's build_musicnn builds it (MTT_musicnn / MSD_musicnn sizes).

def _bn(name):
  return keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)


def musicnn(include_top=False, weights=None, input_shape=None, pooling="avg", midend=64, backend=200):
  """Returns musicnn from a dB log-mel [96 mels, frames, 1] to its penultimate features [200].

  The signature is keras.applications'; `pooling` is musicnn's own (the max and the mean over
  time, interleaved, as its back-end flattens them) whatever is asked, and `weights` is loaded by
  `load_weights` after the build. Layer names follow the checkpoint's variable scopes' roles.
  """
  if include_top or weights is not None:
    raise ValueError("musicnn builds without a top; model.weights loads its checkpoint")
  mels = input_shape[0]
  if mels != MEL_BINS:
    raise ValueError(f"musicnn takes {MEL_BINS} mel bins, not {mels}")
  L = keras.layers
  inputs = keras.Input(input_shape)
  # dB -> log10(1 + 10000 x), x = 10^(dB/10): softplus(dB ln10/10 + ln 10^4) / ln 10.
  ln10 = math.log(10.0)
  x = L.Rescaling(ln10 / 10.0, offset=4.0 * ln10, dtype="float32", name="db_to_power_log")(inputs)
  x = L.Activation("softplus", dtype="float32", name="log1p_10000x")(x)
  x = L.Rescaling(1.0 / ln10, dtype="float32", name="natural_to_log10")(x)
  x = L.Permute((2, 1, 3), name="time_first")(x)  # [frames, mels, 1], musicnn's layout
  x = _bn("input_bn")(x)

  def pooled(y, name):  # the max over every frequency left, then [frames, filters]
    y = L.MaxPooling2D((1, y.shape[2]), name=f"{name}_freq_max")(y)
    return L.Reshape((-1, y.shape[-1]), name=f"{name}_squeeze")(y)

  padded = L.ZeroPadding2D(((3, 3), (0, 0)), name="time_pad")(x)
  front = []
  for name, size in (("timbral74", int(0.4 * mels)), ("timbral77", int(0.7 * mels))):
    y = L.Conv2D(int(1.6 * 128), (7, size), activation="relu", name=f"{name}_conv")(padded)
    front.append(pooled(_bn(f"{name}_bn")(y), name))
  for size in (128, 64, 32):
    name = f"temporal{size}"
    y = L.Conv2D(int(1.6 * 32), (size, 1), padding="same", activation="relu", name=f"{name}_conv")(x)
    front.append(pooled(_bn(f"{name}_bn")(y), name))
  f = L.Concatenate(axis=-1, name="frontend")(front)  # [frames, 561]

  # The mid-end: conv layers as wide as their input are 1-D convolutions over time.
  mid = [f]
  y = f
  for i in (1, 2, 3):
    c = L.Conv1D(midend, 7, activation="relu", name=f"midend{i}_conv")(L.ZeroPadding1D(3, name=f"midend{i}_pad")(y))
    c = _bn(f"midend{i}_bn")(c)
    y = c if i == 1 else L.Add(name=f"midend{i}_residual")([c, y])
    mid.append(y)
  m = L.Concatenate(axis=-1, name="midend")(mid)  # [frames, 753]

  # The back-end: max and mean over time, interleaved per channel as TF's flatten of [753, 2] gives.
  width = m.shape[-1]
  mx = L.Reshape((width, 1), name="time_max_col")(L.GlobalMaxPooling1D(name="time_max")(m))
  mean = L.Reshape((width, 1), name="time_mean_col")(L.GlobalAveragePooling1D(name="time_mean")(m))
  p = L.Flatten(name="max_mean")(L.Concatenate(axis=-1, name="max_mean_pairs")([mx, mean]))
  p = _bn("pool_bn")(p)
  p = L.Dropout(0.5, name="pool_dropout")(p)
  p = L.Dense(backend, activation="relu", name="penultimate")(p)
  p = _bn("penultimate_bn")(p)
  return keras.Model(inputs, p, name="musicnn")


# The checkpoint's layer scopes in build order (tf.compat.v1.layers names them by count), and ours.
_CONVS = ["timbral74_conv", "timbral77_conv", "temporal128_conv", "temporal64_conv", "temporal32_conv",
          "midend1_conv", "midend2_conv", "midend3_conv"]
_BNS = ["input_bn", "timbral74_bn", "timbral77_bn", "temporal128_bn", "temporal64_bn", "temporal32_bn",
        "midend1_bn", "midend2_bn", "midend3_bn", "pool_bn", "penultimate_bn"]
_DENSES = ["penultimate", "tags"]
BACKEND = ("pool_bn", "pool_dropout", "penultimate", "penultimate_bn")  # what model.freeze=features leaves to train


def _scoped(tensors: dict, kind: str, count: int, names: tuple) -> list[str]:
  """Returns the scopes `kind`, `kind_1`, ... `kind_{count-1}`, each checked to hold every one of `names`."""
  scopes = [kind if i == 0 else f"{kind}_{i}" for i in range(count)]
  missing = [s for s in scopes if any(f"{s}/{n}" not in tensors for n in names)]
  if missing:
    raise ValueError(f"musicnn checkpoint lacks the variables of {missing}")
  return scopes


def checkpoint_weights(tensors: dict) -> dict[str, list[np.ndarray]]:
  """Returns our layer name -> Keras weights from a musicnn checkpoint's tensors (the tag layer as "tags")."""
  out = {}
  for ours, scope in zip(_CONVS, _scoped(tensors, "conv2d", len(_CONVS), ("kernel", "bias"))):
    kernel = tensors[f"{scope}/kernel"]
    if ours.startswith("midend"):  # [7, width, 1, filters] -> Conv1D's [7, width, filters]
      kernel = kernel[:, :, 0, :]
    out[ours] = [kernel, tensors[f"{scope}/bias"]]
  bn = ("gamma", "beta", "moving_mean", "moving_variance")
  for ours, scope in zip(_BNS, _scoped(tensors, "batch_normalization", len(_BNS), bn)):
    out[ours] = [tensors[f"{scope}/{v}"] for v in bn]
  for ours, scope in zip(_DENSES, _scoped(tensors, "dense", len(_DENSES), ("kernel", "bias"))):
    out[ours] = [tensors[f"{scope}/kernel"], tensors[f"{scope}/bias"]]
  return out


WHEEL = "musicnn==0.1.0"  # the PyPI release whose MagnaTagATune checkpoint `weights_path` unpacks
MODEL = "MTT_musicnn"
FILES = (".index", ".data-00000-of-00001")  # the checkpoint; pip checks the wheel's hash against the index


class WeightsUnavailable(RuntimeError):
  """Pretrained weights (musicnn's wheel here, keras' ImageNet file in model.py) could not be downloaded or found."""


def checkpoint_prefix(path: str) -> str | None:
  """Returns the checkpoint prefix that `path` names (a folder holding `.index`, `X.index` or `X`), else None."""
  path = str(path)
  for prefix in (os.path.join(path, "") if os.path.isdir(path) else None,
                 path[:-len(".index")] if path.endswith(".index") else None, path):
    if prefix is not None and os.path.isfile(prefix + ".index"):
      return prefix
  return None


def is_checkpoint(path: str) -> bool:
  """Says whether `path` names a TensorFlow checkpoint (see `checkpoint_prefix`)."""
  return checkpoint_prefix(path) is not None


CACHE_NAME = f"{WHEEL.replace('==', '-')}/{MODEL}"  # the folder, under a model cache, that `weights_path` fills


def weights_path(folder: str) -> str:
  """Returns the prefix of musicnn's MagnaTagATune checkpoint in `folder`, unpacked there from its PyPI wheel on
  first use (model.py passes keras' model cache).

  The wheel is fetched with `pip download --no-deps` (so the pip index of this machine is used, and
  none of the wheel's TensorFlow 1 requirements), and only its two checkpoint files are kept.
  """
  prefix = os.path.join(folder, "")
  if all(os.path.isfile(prefix + name) for name in FILES):
    return prefix
  import subprocess
  import sys
  import tempfile
  import zipfile
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", WHEEL, "-d", tmp]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = glob.glob(os.path.join(tmp, "musicnn-*.whl"))
    if done.returncode != 0 or not wheels:
      why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel written"]
      raise WeightsUnavailable(
          f"cannot download {WHEEL} from the pip index ({why[0]}).\n"
          f"Its checkpoint is kept at {folder}; copy musicnn/{MODEL}/.index and .data-00000-of-00001 from the\n"
          f"wheel there, or choose another way out:\n"
          f"  --config.model.weights=/path/to/{MODEL}    (a folder holding a musicnn checkpoint)\n"
          f"  --config.model.weights=none                 (random initialisation)")
    os.makedirs(folder, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
      for name in FILES:
        data = z.read(f"musicnn/{MODEL}/{name}")
        part = prefix + name + ".part"
        with open(part, "wb") as f:
          f.write(data)
        os.replace(part, prefix + name)  # a cut-off download never leaves a half file under the real name
  return prefix


def load_weights(backbone: keras.Model, path: str) -> None:
  """Sets `backbone` (from `musicnn`) to the checkpoint `path` names, checking every shape."""
  prefix = checkpoint_prefix(path)
  if prefix is None:
    raise ValueError(f"{path!r} names no TensorFlow checkpoint (no .index file)")
  weights = checkpoint_weights(read_checkpoint(prefix))
  for layer in backbone.layers:
    if not layer.weights:
      continue
    values = weights[layer.name]
    expected = [tuple(w.shape) for w in layer.weights]
    if [v.shape for v in values] != expected:
      raise ValueError(f"musicnn checkpoint {prefix!r}: {layer.name} has shapes {[v.shape for v in values]}, "
                       f"the network wants {expected}")
    layer.set_weights(values)


def tag_for(name: str) -> str | None:
  """Returns the MagnaTagATune tag a class name means ("drum" -> "drums"), or None."""
  name = name.strip().lower().replace("_", " ")
  for tag in (name, name + "s", name.rstrip("s")):
    if tag in MTT_LABELS:
      return tag
  return None


def tag_head(path: str, classes, current: list[np.ndarray]) -> list[np.ndarray]:
  """Returns classifier weights [kernel [200, classes], bias] whose column for each class named like an MTT tag
  is that tag's output unit of the checkpoint `path` names; the other columns keep `current`."""
  kernel, bias = (np.array(w) for w in current)
  tags_kernel, tags_bias = checkpoint_weights(read_checkpoint(checkpoint_prefix(path)))["tags"]
  for column, name in enumerate(classes):
    tag = tag_for(name)
    if tag is not None:
      kernel[:, column] = tags_kernel[:, MTT_LABELS.index(tag)]
      bias[column] = tags_bias[MTT_LABELS.index(tag)]
  return [kernel, bias]
