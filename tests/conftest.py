import os

import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
# The feature cache of every test (and every training subprocess) lives in a fresh folder.
os.environ["INSTRUMENTS_JAX_CACHE"] = tempfile.mkdtemp(prefix="instruments_jax_cache_")
# XLA's compiled programs are kept on disk for the session (JAX's persistent compilation cache), so
# the many tests and training subprocesses that build the same models compile each program once.
# Every program, however small: model set-up compiles some fifty initializers of a fraction of a second.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="instruments_jax_xla_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest

from instruments_jax.data import synth


@pytest.fixture(scope="session")
def kaggle_dir(tmp_path_factory):
  """A small dataset in the seed's Kaggle layout, rendered from the embedded synth set."""
  root = tmp_path_factory.mktemp("kaggle")
  synth.write_split(str(root), "train", seed=0, limit=24, workers=1)
  synth.write_split(str(root), "test", seed=0, limit=12, workers=1)
  return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
  """A run directory trained for real with the smoke config and the recipe's ResNet50, which the
  inference tests (evaluate, predict, export, report, load_classifier) then read."""
  from instruments_jax.configs import get_config
  from instruments_jax.train import train_and_evaluate

  workdir = tmp_path_factory.mktemp("smoke_run")
  cfg = get_config("smoke")
  cfg.model.backbone = "resnet50"
  train_and_evaluate(cfg, str(workdir))
  return workdir


@pytest.fixture
def stops_in_one_line():
  """Checks that a train mix naming sound engine `engine`, and a validation holding it out, stop with a
  DataError matching `why` (data/synth.py's check_mix, before any clip renders)."""

  def check(engine, why):
    from instruments_jax.configs import get_config
    from instruments_jax.data import sources

    cfg = get_config("smoke").data
    cfg.synth_engines = f"soundfont,{engine}"
    with pytest.raises(sources.DataError, match=f"data.path='synth': .*{why}"):
      sources.open_split(cfg, "train")
    cfg.synth_engines, cfg.validation_strategy, cfg.validation_engine = "soundfont,physical", "engine", engine
    with pytest.raises(sources.DataError, match=f"data.validation_engine='{engine}': .*{why}"):
      sources.train_validation(cfg)

  return check


@pytest.fixture
def library_or_skip():
  """Returns `module.check()` of a sample library (data/soundfonts.py, data/freepats.py), or skips; under CI,
  whose .ci/run installs Debian's `package`, fails."""

  def get(module, what: str, package: str):
    from instruments_jax.data import soundfonts

    try:
      return module.check()
    except soundfonts.SoundfontUnavailable as e:
      if os.environ.get("CI"):
        pytest.fail(f"CI needs {what} for its engine's tests (.ci/run installs {package}): {e}")
      pytest.skip(f"{what} is not on this machine (apt-get install {package}, or set {module.ENV})")

  return get


@pytest.fixture
def library_absent(tmp_path, monkeypatch):
  """Makes a sample library (data/soundfonts.py, data/freepats.py) absent from every place its `path()` looks:
  its system path and cache point into the test's folder, and its environment variable is unset."""

  def hide(module):
    monkeypatch.setattr(module, "SYSTEM_PATH", str(tmp_path / "absent"))
    monkeypatch.setenv("INSTRUMENTS_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(module.ENV, raising=False)

  return hide
