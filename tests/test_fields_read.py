"""Every config field does something: a run that touches every branch reads each one.

Reads are recorded on ml_collections' ConfigDict while a small run trains (every
augmentation, mixup, warmup, clipping, accumulation, buckets and the feature cache on),
evaluates and predicts; a read counts only when package code outside `configs` makes
it (validation and describe read everything, so they do not count).
"""

import sys
import threading

import ml_collections
import pytest

from instruments_jax import configs

pytestmark = pytest.mark.slow  # trains a model


class _Reads:
  """Records `section.field` for every read of a config field from package code."""

  def __init__(self):
    sections = {}
    for path in configs.FIELDS:
      section, _, name = path.rpartition(".")
      sections.setdefault(section, set()).add(name)
    sections[""] |= set(sections) - {""}  # the top level holds the sections besides its own fields
    self.by_keys = {frozenset(names): section for section, names in sections.items()}
    self.paths, self.lock = set(), threading.Lock()

  def record(self, node, name, depth=2):
    caller = sys._getframe(depth).f_globals.get("__name__", "")
    if not caller.startswith("instruments_jax") or caller.startswith("instruments_jax.configs"):
      return
    section = self.by_keys.get(frozenset(node.keys()))
    if section is not None:
      with self.lock:
        self.paths.add(f"{section}.{name}" if section else name)


@pytest.fixture
def reads(monkeypatch):
  r = _Reads()
  cls = ml_collections.ConfigDict
  getattr_, getitem, get = cls.__getattr__, cls.__getitem__, cls.get

  def traced_getattr(self, name):
    value = getattr_(self, name)
    r.record(self, name)
    return value

  def traced_getitem(self, key):
    value = getitem(self, key)
    r.record(self, key)
    return value

  def traced_get(self, key, default=None):
    value = get(self, key, default)
    r.record(self, key)
    return value

  monkeypatch.setattr(cls, "__getattr__", traced_getattr)
  monkeypatch.setattr(cls, "__getitem__", traced_getitem)
  monkeypatch.setattr(cls, "get", traced_get)
  return r


def test_every_field_is_read_by_the_package(reads, tmp_path, kaggle_dir):
  from instruments_jax.classifier import load_classifier
  from instruments_jax.evaluate import evaluate_run
  from instruments_jax.predict import predict_files
  from instruments_jax.train import train_and_evaluate

  cfg = configs.get_config("smoke")
  strong = configs.get_config("strong").augmentation
  for key in strong:
    cfg.augmentation[key] = strong[key]
  for key in ("pitch_prob", "eq_prob", "reverb_prob", "noise_prob", "mix_probability"):
    cfg.augmentation[key] = 1.0  # every transform runs, so every setting of it is read
  cfg.data.path = str(kaggle_dir)
  cfg.data.data_sample = 1.0
  cfg.data.num_folds, cfg.data.validation_fold = 3, 2  # the kaggle fixture has 3 piano clips
  cfg.data.cache_dir = str(tmp_path / "cache")
  cfg.data.length_buckets = (0.5,)
  cfg.train.warmup_epochs = 0.5
  cfg.train.gradient_clip = 1.0
  cfg.train.grad_accumulation = 2
  cfg.prediction.mixed_precision = True
  train_and_evaluate(cfg, str(tmp_path / "run"))
  evaluate_run(str(tmp_path / "run"), split="test")
  clf = load_classifier(str(tmp_path / "run"))
  predict_files(clf, [str(next(kaggle_dir.rglob("*.wav")))])

  unread = sorted(set(configs.FIELDS) - reads.paths)
  assert not unread, f"fields nothing reads (a user's override would do nothing): {unread}"
