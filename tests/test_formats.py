"""Every container, sample format, rate, channel count and length the decoder promises; and a fuzzed decoder."""

import os

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instruments_jax.data.synth import DEFAULT_CLASSES as CLASSES
from instruments_jax.configs import get_config
from instruments_jax.data import audio, sources

# (file name, soundfile format, subtype, rate, channels, seconds)
CASES = [
    ("pcm_u8.wav", "WAV", "PCM_U8", 8000, 1, 0.1),
    ("pcm16.wav", "WAV", "PCM_16", 44100, 2, 3.0),
    ("pcm24.wav", "WAV", "PCM_24", 96000, 1, 1.5),
    ("pcm32.wav", "WAV", "PCM_32", 48000, 6, 2.0),
    ("float.wav", "WAV", "FLOAT", 22050, 2, 4.0),
    ("double.wav", "WAV", "DOUBLE", 16000, 1, 0.5),
    ("lossless.flac", "FLAC", "PCM_16", 44100, 2, 5.0),
    ("hi.flac", "FLAC", "PCM_24", 192000, 1, 0.3),
    ("vorbis.ogg", "OGG", "VORBIS", 44100, 2, 2.5),
    ("layer3.mp3", "MP3", "MPEG_LAYER_III", 44100, 2, 3.0),
    ("low.mp3", "MP3", "MPEG_LAYER_III", 22050, 1, 1.0),
    ("studio.aiff", "AIFF", "PCM_16", 48000, 2, 2.0),
    ("ten_minutes.flac", "FLAC", "PCM_16", 8000, 1, 600.0),
    ("short.aiff", "AIFF", "PCM_24", 11025, 4, 0.1),
]


def _tone(rate, channels, seconds, seed=0):
  t = np.arange(max(1, int(round(rate * seconds)))) / rate
  rng = np.random.default_rng(seed)
  cols = [0.3 * np.sin(2 * np.pi * rng.uniform(110, 1760) * t) for _ in range(channels)]
  return np.stack(cols, axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def format_dir(tmp_path_factory):
  """A class-folder dataset: every CASES file once in each of the four class folders."""
  root = tmp_path_factory.mktemp("formats")
  for k, name in enumerate(CLASSES):
    (root / name).mkdir()
    for j, (fn, fmt, subtype, rate, ch, sec) in enumerate(CASES):
      sf.write(root / name / fn, _tone(rate, ch, sec, seed=k * 100 + j), rate, format=fmt, subtype=subtype)
  return root


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_format_decodes_to_mono_float32_at_the_config_rate(format_dir, case):
  fn, _, _, rate, channels, seconds = case
  path = str(format_dir / "piano" / fn)
  duration, sr, ch = audio.check(path)
  assert (sr, ch) == (rate, channels)
  assert abs(duration - seconds) < 0.08  # mp3 encoders add priming frames
  wave = audio.load_window(path, 0.0, min(seconds, 2.0), 44100)
  assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) == int(round(min(seconds, 2.0) * 44100))
  assert np.isfinite(wave).all() and np.abs(wave).max() > 0.01


def test_long_file_is_read_window_by_window(format_dir):
  path = str(format_dir / "drum" / "ten_minutes.flac")
  late = audio.load_window(path, 598.0, 4.0, 44100)  # 2 s of audio, then 2 s of padding
  assert np.abs(late[: 2 * 44100 - 1000]).max() > 0.01 and not late[2 * 44100 + 10:].any()


@pytest.mark.slow
def test_every_format_trains(format_dir, tmp_path):
  from instruments_jax.train import train_and_evaluate

  ds = sources.open_dataset(str(format_dir), "train")
  assert len(ds) == 4 * len(CASES) and not ds.skipped
  cfg = get_config("smoke")
  cfg.data.path = str(format_dir)
  cfg.data.data_sample = 1.0
  cfg.data.length_buckets = (0.25,)  # the 0.1 s clips get their own short bucket
  results = train_and_evaluate(cfg, str(tmp_path / "run"))
  assert np.isfinite(results["validation"]["loss"]) and results["validation"]["clips"] == 11  # fold 4 of 56 clips


RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]
WRITERS = [("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"), ("WAV", "FLOAT"),
           ("FLAC", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "VORBIS"), ("AIFF", "PCM_16"), ("MP3", "MPEG_LAYER_III")]
EXT = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "AIFF": ".aiff", "MP3": ".mp3"}


def _decode_or_data_error(path, rate):
  """The decoder's contract: finite float32 at `rate`, or the project's DataError; nothing else."""
  try:
    duration, _, _ = audio.check(path)
    wave = audio.load_window(path, 0.0, min(duration, 3.0), rate)
  except audio.DataError:
    return None
  assert wave.dtype == np.float32 and wave.ndim == 1
  assert len(wave) == int(round(min(duration, 3.0) * rate))
  assert np.isfinite(wave).all()
  return wave


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=4096), ext=st.sampled_from(sorted(set(EXT.values()))),
       header=st.sampled_from([b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3", b"FORM"]))
def test_random_bytes_decode_or_raise_data_error(tmp_path_factory, data, ext, header):
  path = os.path.join(tmp_path_factory.mktemp("fuzz"), "x" + ext)
  with open(path, "wb") as f:
    f.write(header + data)
  _decode_or_data_error(path, 22050)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.sampled_from(RATES), channels=st.integers(1, 4), frames=st.integers(1, 30000),
       writer=st.sampled_from(WRITERS), target=st.sampled_from([16000, 22050, 44100]), seed=st.integers(0, 2**16))
def test_random_valid_audio_decodes_to_finite_float32_at_the_config_rate(tmp_path_factory, rate, channels, frames,
                                                                         writer, target, seed):
  fmt, subtype = writer
  if fmt == "MP3" and (rate > 48000 or channels > 2):
    return  # MPEG audio holds at most 48 kHz stereo
  if fmt == "OGG" and channels > 2 and frames < 64:
    return
  x = np.random.default_rng(seed).uniform(-1, 1, (frames, channels)).astype(np.float32)
  path = os.path.join(tmp_path_factory.mktemp("valid"), "x" + EXT[fmt])
  sf.write(path, x, rate, format=fmt, subtype=subtype)
  wave = _decode_or_data_error(path, target)
  if fmt in ("WAV", "FLAC", "AIFF"):  # lossless containers always decode
    assert wave is not None
