"""musicnn: its TensorFlow checkpoint read with numpy alone, mapped onto the Keras network, and its front end."""

import struct

import numpy as np
import pytest

from instruments_jax import model as model_lib
from instruments_jax import musicnn
from instruments_jax.configs import get_config
from instruments_jax.configs.schema import ConfigError, validate


def _varint(n):
  out = b""
  while True:
    out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
    n >>= 7
    if not n:
      return out


def _field(number, value):
  if isinstance(value, int):
    return _varint(number << 3) + _varint(value)
  return _varint(number << 3 | 2) + _varint(len(value)) + value


def _block(entries):
  """A LevelDB table block, every key whole (no prefix sharing), one restart point."""
  body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
  return body + struct.pack("<II", 0, 1)


def write_checkpoint(prefix, tensors):
  """Writes `tensors` (float32) the way TensorFlow's tensor bundle lays them out: a table and one data shard."""
  data, entries = b"", [(b"", _field(1, 1))]  # the header entry (num_shards=1)
  for name in sorted(tensors):
    raw = np.ascontiguousarray(tensors[name], np.float32).tobytes()
    shape = b"".join(_field(2, _field(1, d)) for d in tensors[name].shape)
    entries.append((name.encode(), _field(1, 1) + _field(2, shape) + _field(4, len(data)) + _field(5, len(raw))))
    data += raw
  with open(prefix + ".data-00000-of-00001", "wb") as f:
    f.write(data)
  table = b""

  def put(block):  # appends a raw block and its 5-byte trailer; returns its handle
    nonlocal table
    handle = _varint(len(table)) + _varint(len(block))
    table += block + b"\0\0\0\0\0"
    return handle

  data_handle = put(_block(entries))
  meta_handle = put(_block([]))
  index_handle = put(_block([(entries[-1][0], data_handle)]))
  footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xdb4775248b80fb57)
  with open(prefix + ".index", "wb") as f:
    f.write(table + footer)


def _random_checkpoint(prefix, seed=0):
  """Writes a checkpoint shaped like MTT_musicnn's, random values (and Adam slots, which are skipped)."""
  rng = np.random.default_rng(seed)
  shapes = {"conv2d": (7, 38, 1, 204), "conv2d_1": (7, 67, 1, 204), "conv2d_2": (128, 1, 1, 51),
            "conv2d_3": (64, 1, 1, 51), "conv2d_4": (32, 1, 1, 51), "conv2d_5": (7, 561, 1, 64),
            "conv2d_6": (7, 64, 1, 64), "conv2d_7": (7, 64, 1, 64), "dense": (1506, 200), "dense_1": (200, 50)}
  t = {}
  for scope, shape in shapes.items():
    t[f"{scope}/kernel"] = rng.normal(0, 0.05, shape)
    t[f"{scope}/bias"] = rng.normal(0, 0.05, shape[-1])
    t[f"{scope}/kernel/Adam"] = np.zeros(shape)
  for i, n in enumerate((1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200)):
    scope = "batch_normalization" + (f"_{i}" if i else "")
    t[f"{scope}/gamma"] = rng.uniform(0.5, 1.5, n)
    t[f"{scope}/beta"] = rng.normal(0, 0.1, n)
    t[f"{scope}/moving_mean"] = rng.normal(0, 0.1, n)
    t[f"{scope}/moving_variance"] = rng.uniform(0.5, 1.5, n)
  write_checkpoint(prefix, t)
  return {k: v.astype(np.float32) for k, v in t.items()}


def test_checkpoint_reader_returns_every_tensor_bit_for_bit(tmp_path):
  prefix = str(tmp_path / "model.ckpt")
  written = _random_checkpoint(prefix)
  read = musicnn.read_checkpoint(prefix)
  assert read.keys() == written.keys()
  for name, value in written.items():
    np.testing.assert_array_equal(read[name], value, err_msg=name)


def test_not_a_checkpoint_is_named(tmp_path):
  bad = tmp_path / "x.index"
  bad.write_bytes(b"\0" * 100)
  with pytest.raises(ValueError, match=r"x.index: not a TensorFlow checkpoint index"):
    musicnn.read_checkpoint(str(tmp_path / "x"))
  with pytest.raises(ValueError, match="cannot read checkpoint index"):
    musicnn.read_checkpoint(str(tmp_path / "missing"))


def test_every_checkpoint_variable_lands_in_its_layer(tmp_path):
  written = _random_checkpoint(str(tmp_path) + "/")  # a folder checkpoint, as the wheel's ("<dir>/.index")
  net = musicnn.musicnn(input_shape=(96, None, 1))
  musicnn.load_weights(net, str(tmp_path))
  np.testing.assert_array_equal(net.get_layer("timbral77_conv").get_weights()[0], written["conv2d_1/kernel"])
  np.testing.assert_array_equal(net.get_layer("midend1_conv").get_weights()[0], written["conv2d_5/kernel"][:, :, 0])
  np.testing.assert_array_equal(net.get_layer("pool_bn").get_weights()[3], written["batch_normalization_9/moving_variance"])
  np.testing.assert_array_equal(net.get_layer("penultimate").get_weights()[0], written["dense/kernel"])
  loaded = {w.path for layer in net.layers for w in layer.weights}
  assert len(loaded) == 8 * 2 + 11 * 4 + 2  # every conv, BatchNorm and the penultimate dense; the tag layer is ours to drop


def test_a_checkpoint_of_another_network_is_refused_with_the_layer_named(tmp_path):
  t = _random_checkpoint(str(tmp_path / "a"))
  t["conv2d/kernel"] = np.zeros((7, 40, 1, 204), np.float32)
  write_checkpoint(str(tmp_path / "b"), t)
  with pytest.raises(ValueError, match=r"timbral74_conv has shapes"):
    musicnn.load_weights(musicnn.musicnn(input_shape=(96, None, 1)), str(tmp_path / "b"))
  del t["dense_1/kernel"], t["dense_1/bias"]
  write_checkpoint(str(tmp_path / "c"), t)
  with pytest.raises(ValueError, match=r"lacks the variables of \['dense_1'\]"):
    musicnn.load_weights(musicnn.musicnn(input_shape=(96, None, 1)), str(tmp_path / "c"))


def test_front_end_turns_db_into_musicnn_log_compression():
  net = musicnn.musicnn(input_shape=(96, None, 1))
  probe = musicnn.keras.Model(net.input, net.get_layer("natural_to_log10").output)
  power = np.geomspace(1e-9, 1e3, 96 * 10).reshape(1, 96, 10, 1).astype(np.float32)
  got = np.asarray(probe(10 * np.log10(power)))
  np.testing.assert_allclose(got, np.log10(1 + 10000 * power), rtol=1e-5, atol=1e-6)


def test_musicnn_classifier_takes_any_length_and_its_checkpoint_folder(tmp_path):
  _random_checkpoint(str(tmp_path) + "/")
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights, cfg.audio.mel_bins = "musicnn", str(tmp_path), 96
  m = model_lib.build_model(cfg)
  for frames in (20, 47):
    out = m(np.zeros((2, 96, frames, 1), np.float32))
    assert out.shape == (2, 4) and out.dtype == "float32"
  np.testing.assert_array_equal(m.get_layer("musicnn").get_layer("temporal32_conv").get_weights()[1],
                                musicnn.read_checkpoint(str(tmp_path) + "/")["conv2d_4/bias"])


def test_offline_musicnn_weights_say_where_to_put_them(monkeypatch, tmp_path):
  monkeypatch.setenv("KERAS_HOME", str(tmp_path))
  import subprocess

  monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "ERROR: No matching distribution"))
  cfg = get_config("musicnn")
  with pytest.raises(musicnn.WeightsUnavailable) as e:
    model_lib.build_model(cfg)
  message = str(e.value)
  assert "musicnn==0.1.0" in message and str(tmp_path) in message and "--config.model.weights=none" in message


def test_tag_head_starts_each_class_named_like_a_tag_from_that_tag(tmp_path):
  written = _random_checkpoint(str(tmp_path) + "/")
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights, cfg.audio.mel_bins = "musicnn", str(tmp_path), 96
  cfg.model.head_init, cfg.data.classes = "tags", "drum,Violin,kazoo"
  kernel, bias = model_lib.build_model(cfg).get_layer("logits").get_weights()
  tags = written["dense_1/kernel"], written["dense_1/bias"]
  for column, tag in ((0, "drums"), (1, "violin")):
    np.testing.assert_array_equal(kernel[:, column], tags[0][:, musicnn.MTT_LABELS.index(tag)])
    assert bias[column] == tags[1][musicnn.MTT_LABELS.index(tag)]
  assert not any(np.array_equal(kernel[:, 2], tags[0][:, k]) for k in range(50))  # no kazoo tag: left random
  assert musicnn.tag_for("guitars") == "guitar" and musicnn.tag_for("kazoo") is None


@pytest.mark.parametrize("freeze", ["none", "backbone", "features"])
def test_freeze_leaves_only_the_named_weights_to_train(freeze):
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights, cfg.audio.mel_bins, cfg.model.freeze = "musicnn", "none", 96, freeze
  m = model_lib.build_model(cfg)
  # none: every conv, BatchNorm scale and shift and dense (the moving statistics never train); features: the
  # back-end's dense and its two BatchNorms' scale and shift; always the classifier's kernel and bias
  counts = {"none": 8 * 2 + 11 * 2 + 2 + 2, "backbone": 2, "features": 2 + 2 * 2 + 2}
  assert len(m.trainable_variables) == counts[freeze]


@pytest.mark.slow
def test_musicnn_config_trains_its_back_end_and_keeps_the_frozen_front_end(tmp_path):
  from instruments_jax import classifier
  from instruments_jax.train import train_and_evaluate

  ckpt = tmp_path / "MTT_musicnn"
  ckpt.mkdir()
  written = _random_checkpoint(str(ckpt) + "/")
  cfg = get_config("musicnn")
  cfg.model.weights = str(ckpt)  # the test's checkpoint instead of the wheel's
  smoke = get_config("smoke")
  cfg.data.data_sample, cfg.data.num_workers, cfg.data.cache_dir = smoke.data.data_sample, 0, "none"
  cfg.data.synth_engines = "soundfont,physical,spectral"  # no FreePats download in the suite
  cfg.train.batch_size, cfg.train.epochs, cfg.train.evaluation_epochs = 4, 1, 1
  cfg.audio.training_chunk_seconds = cfg.prediction.inference_chunk_seconds = 1.0
  cfg.prediction.max_inference_chunk_seconds = 2.0
  results = train_and_evaluate(cfg, str(tmp_path / "run"))
  assert 0 <= results["test"]["accuracy"] <= 1
  clf = classifier.load_classifier(str(tmp_path / "run"))
  saved = {v.path: np.asarray(value) for group, key in ((clf.model.trainable_variables, "params"),
                                                        (clf.model.non_trainable_variables, "model_state"))
           for v, value in zip(group, clf.params[key])}
  frozen = {v.path for v in clf.model.non_trainable_variables}
  assert any("timbral74_conv" in p for p in frozen) and not any("penultimate/" in p for p in frozen)
  np.testing.assert_array_equal(saved["timbral74_conv/kernel"], written["conv2d/kernel"])
  np.testing.assert_array_equal(saved["input_bn/moving_mean"], written["batch_normalization/moving_mean"])
  assert not np.array_equal(saved["penultimate/kernel"], written["dense/kernel"])  # the back-end trained


@pytest.mark.parametrize("freeze,fixed", [("backbone", True), ("features", False)])
def test_a_frozen_backbone_gives_the_same_features_in_training(freeze, fixed):
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights, cfg.audio.mel_bins, cfg.model.freeze = "musicnn", "none", 96, freeze
  net = model_lib.build_model(cfg).get_layer("musicnn")
  x = np.random.default_rng(0).normal(-30, 10, (2, 96, 40, 1)).astype(np.float32)
  a, b = np.asarray(net(x, training=True)), np.asarray(net(x, training=True))
  # frozen whole, its BatchNorms run on their statistics and its dropout is off; with its back-end
  # training, the dropout before that dense layer stays, as musicnn was trained
  assert np.array_equal(a, b) == fixed


def test_cnn8_beside_musicnn_loads_the_checkpoint_into_its_half_and_trains_cnn8(tmp_path):
  written = _random_checkpoint(str(tmp_path) + "/")
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights, cfg.audio.mel_bins = "cnn8+musicnn", str(tmp_path), 96
  cfg.model.freeze, cfg.model.width = "features", 0.5
  m = model_lib.build_model(cfg)
  for frames in (20, 47):
    assert m(np.zeros((2, 96, frames, 1), np.float32)).shape == (2, 4)
  backbone = m.get_layer("cnn8_musicnn")
  half = backbone.get_layer("musicnn")
  np.testing.assert_array_equal(half.get_layer("timbral74_conv").get_weights()[0], written["conv2d/kernel"])
  assert m.get_layer("logits").get_weights()[0].shape == (128 + 200, 4)  # cnn8 at width 0.5, then musicnn
  trainable = {v.path.split("/")[0] for v in m.trainable_variables}
  # cnn8 trains whole (8 convs, 8 BatchNorms); of musicnn only its back-end; and the classifier
  assert {f"block{b}_conv{c}" for b in (1, 2, 3, 4) for c in (1, 2)} <= trainable
  assert set(musicnn.BACKEND) - {"pool_dropout"} <= trainable and "timbral74_conv" not in trainable
  assert len(m.trainable_variables) == 8 + 8 * 2 + 2 + 2 * 2 + 2


def test_branch_dropout_drops_a_samples_musicnn_features_whole_in_training_only():
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights, cfg.audio.mel_bins, cfg.model.freeze = "cnn8+musicnn", "none", 96, "backbone"
  cfg.model.branch_dropout = 0.5
  backbone = model_lib.build_model(cfg).get_layer("cnn8_musicnn")
  x = np.random.default_rng(0).normal(-30, 10, (64, 96, 40, 1)).astype(np.float32)
  heard = np.asarray(backbone(x, training=True))[:, -200:]
  whole = np.asarray(backbone(x, training=False))[:, -200:]
  dropped = (heard == 0).all(axis=1)
  assert 10 < dropped.sum() < 54  # about half of 64, each sample's 200 together
  np.testing.assert_allclose(heard[~dropped], 2 * whole[~dropped], rtol=1e-2, atol=1e-2)


def test_the_wide_front_end_gives_musicnn_its_own_bands_and_cnn8_up_to_15_khz(tmp_path):
  from instruments_jax.configs.schema import MUSICNN_AUDIO, MUSICNN_WIDE_AUDIO
  from instruments_jax.data import features

  _random_checkpoint(str(tmp_path) + "/")
  configs = {}
  for name, audio in (("musicnn", MUSICNN_AUDIO), ("cnn8+musicnn", MUSICNN_WIDE_AUDIO)):
    cfg = get_config("smoke")
    cfg.model.backbone, cfg.model.weights, cfg.train.mixed_precision = name, str(tmp_path), False
    for path, value in audio.items():
      setattr(cfg.audio, path.split(".")[1], value)
    validate(cfg.to_dict(), device_count=1)  # the wide band passes musicnn's rule beside cnn8
    configs[name] = cfg
  alone = model_lib.build_model(configs["musicnn"]).get_layer("musicnn")
  beside = model_lib.build_model(configs["cnn8+musicnn"]).get_layer("cnn8_musicnn")
  tones = ((196.0, 1.0), (1318.5, 0.3), (5274.0, 0.1))  # below 8 kHz: both rates carry them whole
  mels = []
  for cfg in configs.values():
    t = np.arange(2 * cfg.audio.sample_rate) / cfg.audio.sample_rate
    wave = sum(a * np.sin(2 * np.pi * f * t) for f, a in tones).astype(np.float32)
    mels.append(features.log_mel(wave, cfg.audio)[None, :, :, None])
  assert mels[0].shape[1:] == (96, 126, 1) and mels[1].shape[1:] == (117, 126, 1)
  # dB, away from the first and last frames, where the clip's abrupt ends alias at 16 kHz and not at 32
  inner = slice(2, -2)
  np.testing.assert_allclose(mels[1][:, :96, inner] - 20 * np.log10(2), mels[0][:, :, inner], atol=0.02)
  got, want = (np.asarray(net(m[:, :, inner])) for net, m in ((beside, mels[1]), (alone, mels[0])))
  np.testing.assert_allclose(got[:, -200:], want, rtol=1e-3, atol=1e-3)
  cfg = configs["cnn8+musicnn"]
  cfg.audio.fmax = 16000.0  # bands no longer spaced as musicnn's
  with pytest.raises(ConfigError) as e:
    validate(cfg.to_dict(), device_count=1)
  assert "audio.mel_bins=117" in str(e.value) and "first 96 bands are musicnn's" in str(e.value)
