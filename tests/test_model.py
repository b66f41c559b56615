import h5py
import keras
import numpy as np
import pytest

from instruments_jax import model as model_lib
from instruments_jax.configs import get_config


def _cfg(weights):
  cfg = get_config("smoke")
  cfg.model.backbone, cfg.model.weights = "resnet50", weights
  return cfg


def _three_channel_weights(path, legacy):
  """Writes a no-top 3-channel ResNet50 weights file like keras' ImageNet one; returns its model."""
  keras.utils.set_random_seed(1)
  src = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
  if legacy:  # the format of keras' ImageNet file
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
      legacy_h5_format.save_weights_to_hdf5_group(f, src)
  else:
    src.save_weights(path)
  return src


@pytest.mark.parametrize("legacy", [True, False])
def test_weights_from_a_local_file_with_conv1_summed_over_rgb(tmp_path, legacy):
  path = str(tmp_path / ("w.h5" if legacy else "w.weights.h5"))
  src = _three_channel_weights(path, legacy)
  m = model_lib.build_model(_cfg(path), (32, 64, 1))
  backbone = m.get_layer("resnet50")
  kernel = backbone.get_layer("conv1_conv").get_weights()[0]
  rgb = src.get_layer("conv1_conv").get_weights()[0]
  assert kernel.shape == (7, 7, 1, 64)
  np.testing.assert_allclose(kernel[:, :, 0], rgb.sum(axis=2), rtol=1e-6)
  for name in ("conv2_block1_1_conv", "conv5_block3_3_bn"):
    for a, b in zip(backbone.get_layer(name).get_weights(), src.get_layer(name).get_weights()):
      np.testing.assert_array_equal(a, b)


def test_model_maps_log_mel_to_one_logit_per_class():
  m = model_lib.build_model(_cfg("none"), (32, 64, 1))
  out = m(np.zeros((2, 32, 64, 1), np.float32))
  assert out.shape == (2, 4) and str(out.dtype) == "float32"
  assert m.get_layer("resnet50").get_layer("avg_pool") is not None


def test_mixed_precision_computes_in_bf16_with_float32_weights():
  cfg = _cfg("none")
  cfg.train.mixed_precision = True
  m = model_lib.build_model(cfg, (32, 64, 1))
  conv = m.get_layer("resnet50").get_layer("conv1_conv")
  assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
  assert str(m(np.zeros((1, 32, 64, 1), np.float32)).dtype) == "float32"


def test_offline_imagenet_names_url_cache_and_both_ways_out(monkeypatch):
  def no_network(*args, **kwargs):
    raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

  monkeypatch.setattr(model_lib, "get_file", no_network)
  with pytest.raises(model_lib.WeightsUnavailable) as e:
    model_lib.build_model(_cfg("imagenet"), (32, 64, 1))
  msg = str(e.value)
  assert model_lib.IMAGENET_URL in msg
  assert model_lib.keras_cache_path() in msg
  assert "--config.model.weights=none" in msg and "--config.model.weights=/path/to/" in msg


def test_missing_weights_file_is_named():
  with pytest.raises(FileNotFoundError, match="nope.h5"):
    model_lib.build_model(_cfg("/nope.h5"), (32, 64, 1))


def test_batchnorm_keeps_running_stats_like_pytorch():
  m = model_lib.build_model(_cfg("none"), (32, 64, 1))
  bns = [l for l in m.get_layer("resnet50").layers if isinstance(l, keras.layers.BatchNormalization)]
  assert len(bns) == 53 and all(l.momentum == 0.9 for l in bns)


def test_cnn8_maps_any_length_to_one_logit_per_class_in_bf16():
  cfg = _cfg("none")
  cfg.model.backbone, cfg.train.mixed_precision = "cnn8", True
  m = model_lib.build_model(cfg)  # (mel_bins, None, 1): any number of frames
  assert m.name == "instruments_cnn8"
  backbone = m.get_layer("cnn8")
  assert backbone.get_layer("block1_conv1").strides == (2, 2)
  assert backbone.get_layer("block1_conv1").compute_dtype == "bfloat16"
  for frames in (5, 87):
    out = m(np.zeros((2, cfg.audio.mel_bins, frames, 1), np.float32))
    assert out.shape == (2, 4) and str(out.dtype) == "float32"
  bns = [l for l in backbone.layers if isinstance(l, keras.layers.BatchNormalization)]
  assert len(bns) == 8 and all(l.momentum == 0.9 for l in bns)


def test_cnn8_width_multiplies_every_convolution():
  cfg = _cfg("none")
  cfg.model.backbone, cfg.model.width = "cnn8", 1.5
  backbone = model_lib.build_model(cfg, (32, 64, 1)).get_layer("cnn8")
  convs = [l.filters for l in backbone.layers if isinstance(l, keras.layers.Conv2D)]
  assert convs == [48, 48, 96, 96, 192, 192, 384, 384]


def test_cnn8_weights_from_a_file_saved_from_it(tmp_path):
  cfg = _cfg("none")
  cfg.model.backbone = "cnn8"
  keras.utils.set_random_seed(3)
  src = model_lib.build_model(cfg, (32, 64, 1)).get_layer("cnn8")
  path = str(tmp_path / "cnn8.weights.h5")
  src.save_weights(path)
  cfg.model.weights = path
  keras.utils.set_random_seed(4)
  loaded = model_lib.build_model(cfg, (32, 64, 1)).get_layer("cnn8")
  for a, b in zip(loaded.get_weights(), src.get_weights()):
    np.testing.assert_array_equal(a, b)
  cfg.model.weights = str(tmp_path / "resnet50.weights.h5")
  _three_channel_weights(cfg.model.weights, legacy=False)  # a ResNet50 file does not fit cnn8
  with pytest.raises(ValueError, match="cannot load cnn8 weights from"):
    model_lib.build_model(cfg, (32, 64, 1))


@pytest.mark.parametrize("backbone", ["cnn8", "resnet50"])
def test_panns_pool_is_the_frequency_mean_then_the_time_max_plus_mean(backbone, tmp_path):
  cfg = _cfg("none")
  cfg.model.backbone, cfg.model.pool, cfg.audio.mel_bins = backbone, "panns", 64  # ResNet50's map: 2 bands tall
  m = model_lib.build_model(cfg)  # (mel_bins, None, 1): any number of frames
  x = np.random.default_rng(0).normal(size=(2, cfg.audio.mel_bins, 87, 1)).astype(np.float32)
  fmap = np.asarray(m.get_layer(backbone)(x))  # [B, freq, time, C]: the backbone no longer pools
  assert fmap.ndim == 4 and fmap.shape[1] > 1 and fmap.shape[2] > 1
  pooled = np.asarray(keras.Model(m.input, m.get_layer("time_max_plus_mean").output)(x))
  over_time = fmap.mean(axis=1)
  np.testing.assert_allclose(pooled, over_time.max(axis=1) + over_time.mean(axis=1), rtol=1e-5, atol=1e-5)
  for frames in (5, 87):
    assert m(x[:, :, :frames]).shape == (2, 4)
  path = str(tmp_path / "panns.keras")  # built-in layers only: the export opens without this package
  m.save(path)
  np.testing.assert_allclose(keras.saving.load_model(path)(x), m(x), rtol=1e-5, atol=1e-5)
