"""The command lines: every wrong config value ends in one clean message, exit status 2, before any work."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each case starts a process (about 2 s)

# (overrides, the field the message must name); one per kind of mistake.
WRONG = [
    (["--config.train.loss=bec"], "train.loss"),  # unknown enum
    (["--config.train.optimizer=adam"], "train.optimizer"),  # unknown enum
    (["--config.train.batch_size=0"], "train.batch_size"),  # non-positive size
    (["--config.audio.fmax=30000"], "audio.fmax"),  # above Nyquist (22 050 Hz)
    (["--config.audio.fmin=20000"], "audio.fmin"),  # fmin above fmax
    (["--config.audio.hop_size=4096"], "audio.hop_size"),  # hop longer than the window
    (["--config.data.validation_fold=5"], "data.validation_fold"),  # fold out of 0..4
    (["--config.train.batchsize=8"], "train.batchsize"),  # unknown field
    (["--config.trainer.epochs=1"], "trainer.epochs"),  # unknown section
    (["--config.train.epochs=two"], "train.epochs"),  # wrong type
    (["--config.augmentation.noise_prob=1.5"], "augmentation.noise_prob"),  # probability above 1
    (["--config.train.learning_rate=-0.1"], "train.learning_rate"),  # negative
    (["--config.model.weights=/nonexistent/w.h5"], "model.weights"),  # no such file
    (["--config.data.path=/nonexistent/data"], "data.path"),  # no such directory
    (["--config.audio.features_on_device=true", "--config.augmentation.freq_masks=2"], "audio.features_on_device"),
    (["--config.prediction.max_inference_chunk_seconds=0.1"], "prediction.max_inference_chunk_seconds"),
]


def _run(module, args, tmp_path, env=None):
  cmd = [sys.executable, "-m", f"instruments_jax.{module}", "--config=smoke", *args]
  if module == "train":
    cmd.append(f"--workdir={tmp_path / 'run'}")
  return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def _assert_config_error(p, field):
  assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
  assert field in p.stderr and "error:" in p.stderr
  assert "Traceback" not in p.stderr + p.stdout


@pytest.mark.parametrize("module", ["train", "profile"])
@pytest.mark.parametrize("args,field", WRONG, ids=[w[1] + ("+" if len(w[0]) > 1 else "") for w in WRONG])
def test_a_wrong_value_exits_2_naming_the_field(module, args, field, tmp_path):
  p = _run(module, args, tmp_path)
  _assert_config_error(p, field)
  assert not (tmp_path / "run").exists()  # stopped before touching the workdir, data or model


@pytest.mark.parametrize("module", ["train", "profile"])
def test_a_batch_that_does_not_divide_over_the_devices_exits_2(module, tmp_path):
  p = _run(module, ["--config.train.batch_size=6"], tmp_path,
           env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"})
  _assert_config_error(p, "train.batch_size")
  assert "does not divide over 4 devices" in p.stderr


def test_several_wrong_fields_are_listed_at_once(tmp_path):
  p = _run("train", ["--config.train.loss=bec", "--config.audio.fmax=30000", "--config.train.epochs=0"], tmp_path)
  _assert_config_error(p, "train.loss")
  assert "audio.fmax" in p.stderr and "train.epochs" in p.stderr and "3 config problems" in p.stderr


def test_an_unknown_config_name_exits_2(tmp_path):
  p = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=nosuch", f"--workdir={tmp_path}"],
                     capture_output=True, text=True, timeout=120)
  _assert_config_error(p, "--config=nosuch")


def test_describe_config_documents_every_field_with_its_value():
  from instruments_jax import configs

  out = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=quick", "--describe_config",
                        "--config.train.epochs=7"], capture_output=True, text=True, timeout=120, check=True).stdout
  rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
  assert set(rows) == set(configs.FIELDS)
  assert " 7 " in rows["train.epochs"] and configs.FIELDS["train.epochs"].doc in rows["train.epochs"]
  assert "64" in rows["audio.mel_bins"]  # quick's value, not baseline's 128


def test_helpfull_points_to_describe_config():
  out = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--helpfull"], capture_output=True, text=True,
                       timeout=120).stdout
  assert "--describe_config" in out and "--config.SECTION.FIELD=VALUE" in out
