"""Randomized, deterministic recording chains: what happens to a clip between the player and the file.

The synth plays every clip dry, clean and at studio level, as if the instrument went straight into the
converter. Real recordings pass through a chain, and a model that never heard one fails on them. Each
clip gets one `Chain`, drawn from a seeded generator, applied in the order sound meets it:

  1. room          a pyroomacoustics image-source shoebox room recorded by a stereo pair (spaced or
                   coincident cardioids), blended with the dry signal (the wet fraction stands for mic
                   distance); some chains are close-miked and have no room at all;
  2. microphone/EQ a mic or device curve: high-pass, low-pass, a peak and a high shelf (one SOS cascade);
  3. distortion    rarely: tanh, cubic soft clip or an asymmetric tube-like curve, driven relative to the
                   clip's level so the drive means the same at every loudness;
  4. compression   a feed-forward compressor: one-pole envelope of the squared signal, a gain computer
                   (threshold relative to the level, ratio), a one-pole gain smoother for release;
  5. noise floor   white, pink, brown, mains hum (50/60 Hz and harmonics), babble-like modulated band
                   noise or rain-like crackle, at a drawn SNR relative to the signal at that point;
  6. level         a peak or RMS target over a wide dB range, clipped at +-1 like a converter;
  7. codec         sometimes an MP3 or Ogg Vorbis round trip through libsndfile at a supported rate and a
                   drawn quality (resampled with soxr and back when the clip's rate differs).

Pools. "seen" chains (train and test splits) and "unseen" chains (a held-out split) share the noise,
dynamics, codec and level settings, but draw rooms and mic curves from disjoint families, so the
held-out split measures whether the model copes with acoustics it was never trained on:

  rooms   seen:   booth, living room, studio, hall (aspect <= 3, RT60 0.15..1.2 s, mic 0.3..3 m)
          unseen: tiled bathroom (tiny and live), corridor (aspect >= 4.8), church (RT60 1.5..2.2 s),
                  all miked from further away (the wet fraction is drawn higher too)
  curves  seen:   studio (high-pass 40..180 Hz), phone (band-pass from 200..400 Hz)
          unseen: dark ribbon / old dynamic (high-pass 20..35 Hz, shelf down from 1.2..2.5 kHz),
                  laptop (high-pass 400..700 Hz, low-pass 8..11 kHz)
  The high-pass corner alone tells the curve families apart.

Windows. The caller renders a window with up to 1 s of pre-roll, applies the chain and cuts the pre-roll,
so reverb tails and compressor envelopes are nearly those of the whole clip. Noise must not depend on the
window: it is generated in fixed 1 s blocks of absolute clip time, block b from
`np.random.default_rng([*key, 7, b])`, and filtered noise is started a quarter second early so its
filter state has settled by the window's first sample.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import time

import numpy as np

POOLS = ("seen", "unseen")

_SEEN_ROOMS, _UNSEEN_ROOMS = 48, 16
_SOUND_SPEED = 343.0
# Image-source order cap: the image count grows as order**3, so order 8 keeps an IR near 40 ms to build;
# the late tail past what the images cover is synthesized (see _late_tail).
_MAX_ORDER = 8
_TAIL_DB = 50.0  # the IR is cut where its decay reaches -50 dB: below that the tail is masked in a mix

# Room families: (name, length, width, height ranges in m, RT60 range in s, mic distance range in m).
# Seen and unseen boxes do not overlap (tests check every room lies in its own box and in no box of the
# other pool): unseen rooms are live for their size (bathroom), long and thin (corridor) or very live (church).
ROOM_FAMILIES = {
    "seen": (
        ("booth", (1.8, 3.0), (1.5, 2.5), (2.1, 2.5), (0.15, 0.3), (0.3, 1.0)),
        ("living", (4.0, 7.0), (3.0, 5.0), (2.4, 2.8), (0.3, 0.6), (0.5, 2.5)),
        ("studio", (6.0, 12.0), (5.0, 9.0), (3.0, 5.0), (0.3, 0.8), (0.5, 3.0)),
        ("hall", (15.0, 30.0), (10.0, 20.0), (6.0, 12.0), (0.8, 1.2), (1.0, 3.0)),
    ),
    "unseen": (
        ("bathroom", (1.6, 2.5), (1.2, 2.0), (2.2, 2.5), (0.6, 1.0), (0.8, 1.5)),
        ("corridor", (12.0, 25.0), (1.5, 2.5), (2.4, 3.0), (0.8, 1.5), (4.0, 8.0)),
        ("church", (25.0, 45.0), (15.0, 25.0), (12.0, 20.0), (1.5, 2.2), (6.0, 15.0)),
    ),
}

# Mic / device curves: (name, high-pass Hz, low-pass Hz or 0, peak Hz, peak dB, shelf Hz, shelf dB) ranges.
# The high-pass ranges of the four families do not overlap, which makes the pools disjoint by setting.
CURVE_FAMILIES = {
    "seen": (
        ("studio", (40.0, 180.0), (0.0, 0.0), (2000.0, 6000.0), (0.0, 6.0), (6000.0, 14000.0), (-9.0, 0.0)),
        ("phone", (200.0, 400.0), (3400.0, 7000.0), (800.0, 2500.0), (3.0, 8.0), (6000.0, 14000.0), (-3.0, 0.0)),
    ),
    "unseen": (
        ("dark", (20.0, 35.0), (0.0, 0.0), (150.0, 400.0), (2.0, 6.0), (1200.0, 2500.0), (-14.0, -8.0)),
        ("laptop", (400.0, 700.0), (8000.0, 11000.0), (1500.0, 3000.0), (4.0, 10.0), (5000.0, 8000.0), (-6.0, 0.0)),
    ),
}
_CURVE_WEIGHTS = {"seen": (0.8, 0.2), "unseen": (0.5, 0.5)}

NOISES = ("white", "pink", "brown", "hum", "babble", "crackle")
_NOISE_WEIGHTS = (0.15, 0.25, 0.1, 0.15, 0.2, 0.15)
# Codec rates: all of them MP3 rates (MPEG-1 and -2); Vorbis takes any. Lower ones are what cheap encoders
# and voice apps pick, and they cost less to encode.
_CODEC_RATES = (16000, 22050, 24000, 32000, 44100, 48000)
_CODEC_RATE_WEIGHTS = (0.25, 0.3, 0.2, 0.1, 0.1, 0.05)

# Stage probabilities, shared by both pools.
P_ROOM, P_DISTORTION, P_COMPRESSION, P_NOISE, P_CODEC = 0.75, 0.1, 0.35, 0.7, 0.1


@dataclasses.dataclass(frozen=True)
class Chain:
  """Every setting of one clip's recording chain. A stage whose switch is off ("none", -1, ratio 1) is skipped."""

  pool: str = "seen"
  room: int = -1  # index into the pool's room bank; -1: close-miked, no room
  room_wet: float = 0.0  # wet fraction of the room pair in the blend with the dry signal (mic distance)
  curve: str = "flat"  # mic / device curve family; "flat" only in DRY
  hp_hz: float = 0.0  # high-pass corner (2nd order Butterworth), 0: none
  lp_hz: float = 0.0  # low-pass corner (4th order Butterworth), 0: none
  peak_hz: float = 1000.0
  peak_db: float = 0.0
  peak_q: float = 1.0
  shelf_hz: float = 8000.0  # high shelf
  shelf_db: float = 0.0
  distortion: str = "none"  # "none", "tanh", "soft", "tube"
  drive_db: float = 0.0  # drive above the clip's RMS-normalized level
  comp_threshold_db: float = 0.0  # relative to the signal's RMS
  comp_ratio: float = 1.0  # 1: no compression
  comp_attack_ms: float = 5.0
  comp_release_ms: float = 100.0
  noise: str = "none"  # "none" or one of NOISES
  snr_db: float = 60.0
  hum_hz: float = 50.0
  codec: str = "none"  # "none", "mp3", "vorbis"
  codec_rate: int = 0
  codec_quality: float = 0.5  # libsndfile's compression_level: 0 best, 0.95 worst used here
  codec_channels: int = 2  # 1: downmixed before encoding, like a mono voice memo
  level: str = "none"  # "none", "peak", "rms"
  level_db: float = 0.0  # dBFS target of the peak or the RMS


DRY = Chain()


@dataclasses.dataclass(frozen=True)
class RoomSpec:
  """The geometry of one room of a pool's bank (a pure function of pool and index)."""

  family: str
  dims: tuple[float, float, float]
  rt60: float
  source: tuple[float, float, float]
  mics: tuple[tuple[float, float, float], tuple[float, float, float]]
  pair: str  # "spaced" (omni AB) or "coincident" (XY cardioids at +-45 degrees)
  facing_deg: float  # azimuth from the pair towards the source
  distance: float


def _check_pool(pool: str):
  if pool not in POOLS:
    raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")


def n_rooms(pool: str) -> int:
  _check_pool(pool)
  return _SEEN_ROOMS if pool == "seen" else _UNSEEN_ROOMS


@functools.lru_cache(maxsize=None)
def room_spec(room: int, pool: str = "seen") -> RoomSpec:
  """Draws room `room` of `pool` from its own generator: family round-robin, then size, RT60 and placement."""
  if not 0 <= room < n_rooms(pool):
    raise ValueError(f"room {room} outside the {pool} bank of {n_rooms(pool)}")
  families = ROOM_FAMILIES[pool]
  name, lr, wr, hr, rtr, dr = families[room % len(families)]
  rng = np.random.default_rng([0x600D, POOLS.index(pool), room])
  dims = np.array([rng.uniform(*lr), rng.uniform(*wr), rng.uniform(*hr)])
  rt60 = float(rng.uniform(*rtr))
  margin = np.minimum(0.4, dims / 4)  # keep source and mics off the walls
  source = np.array([rng.uniform(margin[0], dims[0] - margin[0]), rng.uniform(margin[1], dims[1] - margin[1]),
                     rng.uniform(1.0, min(1.8, dims[2] - margin[2]))])
  # The pair sits at a drawn distance in a drawn direction, pulled back inside the room if it falls out.
  # Of 16 drawn directions the first where the drawn distance fits is used (else the roomiest one), so that
  # distant miking stays distant in narrow rooms.
  distance = float(rng.uniform(*dr))
  height = rng.uniform(1.2, min(2.0, dims[2] - margin[2]))
  candidates = []
  for azimuth in rng.uniform(0, 2 * np.pi, 16):
    center = source + distance * np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
    center[2] = height
    candidates.append(np.clip(center, margin, dims - margin))
  reach = [np.linalg.norm(c - source) for c in candidates]
  fits = [i for i, c in enumerate(reach) if c >= 0.95 * np.hypot(distance, height - source[2])]
  center = candidates[fits[0] if fits else int(np.argmax(reach))]
  to_source = source[:2] - center[:2]
  facing = float(np.degrees(np.arctan2(to_source[1], to_source[0])))
  pair = "spaced" if rng.random() < 0.5 else "coincident"
  if pair == "spaced":  # AB pair across the line to the source, 0.2..0.6 m apart
    half = rng.uniform(0.1, 0.3) * np.array([-np.sin(np.radians(facing)), np.cos(np.radians(facing)), 0.0])
    mics = (np.clip(center - half, margin, dims - margin), np.clip(center + half, margin, dims - margin))
  else:
    mics = (center, center)
  return RoomSpec(name, tuple(map(float, dims)), rt60, tuple(map(float, source)),
                  tuple(tuple(map(float, m)) for m in mics), pair, facing,
                  float(np.linalg.norm(center - source)))


@functools.lru_cache(maxsize=256)
def room_ir(room: int, rate: int, pool: str = "seen") -> np.ndarray:
  """Returns the stereo impulse response of room `room` of `pool`: float32 [taps, 2], read-only.

  Image sources (order capped) give the direct path and early reflections; an exponentially decaying noise
  tail, matched to their energy, carries the decay on to -50 dB. The first arrival sits a few taps in, and
  the IR is scaled to unit energy per channel on average, so `room_wet` sets a loudness-neutral blend.
  """
  import pyroomacoustics as pra

  spec = room_spec(room, pool)
  absorption, sabine_order = pra.inverse_sabine(spec.rt60, list(spec.dims))
  order = int(min(sabine_order, _MAX_ORDER))
  shoebox = pra.ShoeBox(list(spec.dims), fs=rate, materials=pra.Material(absorption), max_order=order,
                        air_absorption=True)
  shoebox.add_source(list(spec.source))
  directivity = None
  if spec.pair == "coincident":
    from pyroomacoustics.directivities import Cardioid, DirectionVector

    directivity = [Cardioid(DirectionVector(azimuth=spec.facing_deg + side, colatitude=90, degrees=True))
                   for side in (45.0, -45.0)]
  shoebox.add_microphone_array(pra.MicrophoneArray(np.array(spec.mics).T, rate, directivity=directivity))
  shoebox.compute_rir()
  early = [np.asarray(shoebox.rir[m][0], np.float64) for m in range(2)]
  taps = max(len(e) for e in early)
  ism = np.zeros((taps, 2))
  for m, e in enumerate(early):
    ism[:len(e), m] = e
  # pyroomacoustics centers each arrival in an 81-tap fractional-delay filter: start 48 taps before the
  # first arrival's peak so the direct path keeps its shape but the propagation pre-delay is gone.
  first = int(min(np.argmax(np.abs(ism[:, m])) for m in range(2)))
  ism = ism[max(0, first - 48):]
  rng = np.random.default_rng([0x7A11, POOLS.index(pool), room, rate])
  ir = _late_tail(ism, spec, order, rate, rng)
  ir /= np.sqrt(np.mean(np.sum(ir**2, axis=0))) + 1e-12
  ir = ir.astype(np.float32)
  ir.setflags(write=False)  # shared by every caller through the cache
  return ir


def _late_tail(ism: np.ndarray, spec: RoomSpec, order: int, rate: int, rng: np.random.Generator) -> np.ndarray:
  """Continues a capped image-source IR with decaying noise to the -50 dB point of the room's RT60.

  Images up to `order` cover the response until about order * (shortest side) / c; after that the ISM
  thins out. The tail is noise shaped by exp(-6.9 t / RT60) (highs decay twice as fast, as air and walls
  absorb them more), its level fitted to the ISM energy just before the crossover, where the two crossfade.
  """
  from scipy.signal import lfilter

  n = int(rate * spec.rt60 * _TAIL_DB / 60.0)
  cross = max(int(min(order * min(spec.dims) / _SOUND_SPEED, 0.8 * n / rate) * rate), 64)
  out = np.zeros((n, 2))
  out[:min(n, len(ism))] = ism[:n]  # images arriving after the -50 dB point are dropped with the rest
  t = np.arange(n) / rate
  decay = np.exp(-6.9 * t / spec.rt60)
  # Fit the tail's amplitude on [cross/2, cross): ISM energy there over the unit-noise envelope's energy.
  fit = slice(cross // 2, cross)
  amp = np.sqrt(np.sum(out[fit] ** 2, axis=0).mean() / (np.sum(decay[fit] ** 2) + 1e-20))
  noise = rng.standard_normal((n, 2))
  if spec.pair == "coincident":  # XY cardioids pick up a partly shared diffuse field
    noise[:, 1] = 0.7 * noise[:, 0] + np.sqrt(1 - 0.7**2) * noise[:, 1]
  low = lfilter([0.15], [1, -0.85], noise, axis=0)  # one-pole split at ~1.2 kHz (at 48 kHz)
  high = noise - low
  low /= np.std(low) + 1e-12
  high /= np.std(high) + 1e-12
  tail = amp * (low * decay[:, None] + high * (decay**2)[:, None]) / np.sqrt(2)
  ramp = np.clip((np.arange(n) - cross) / (0.01 * rate) + 0.5, 0.0, 1.0)[:, None]  # 10 ms crossfade
  return out * (1 - ramp) + tail * ramp


def draw(rng: np.random.Generator, pool: str, p_distortion: float = P_DISTORTION) -> Chain:
  """A random chain. "seen" (train and test splits) and "unseen" (a held-out split) use disjoint rooms and mic curves.

  Every setting is drawn whether or not its stage is on, so switching one stage's probability does not
  shift the other stages' draws.
  """
  _check_pool(pool)
  u = lambda lo, hi: float(rng.uniform(lo, hi))
  room = int(rng.integers(n_rooms(pool)))
  wet = u(0.1, 0.8) if pool == "seen" else u(0.3, 1.0)  # unseen rooms are miked from further away
  has_room = rng.random() < P_ROOM
  families = CURVE_FAMILIES[pool]
  name, hp, lp, pk, pkdb, sh, shdb = families[int(rng.choice(len(families), p=_CURVE_WEIGHTS[pool]))]
  curve = dict(curve=name, hp_hz=u(*hp), lp_hz=u(*lp) if lp[1] else 0.0, peak_hz=u(*pk), peak_db=u(*pkdb),
               peak_q=u(0.7, 2.0), shelf_hz=u(*sh), shelf_db=u(*shdb))
  distortion = str(rng.choice(("tanh", "soft", "tube")))
  drive = u(0.0, 18.0)
  has_distortion = rng.random() < p_distortion
  comp = dict(comp_threshold_db=u(-18.0, 0.0), comp_ratio=u(1.5, 8.0), comp_attack_ms=u(1.0, 30.0),
              comp_release_ms=u(40.0, 400.0))
  has_comp = rng.random() < P_COMPRESSION
  noise = str(rng.choice(NOISES, p=_NOISE_WEIGHTS))
  snr, hum = u(15.0, 60.0), float(rng.choice((50.0, 60.0)))
  has_noise = rng.random() < P_NOISE
  codec = str(rng.choice(("mp3", "vorbis")))
  codec_rate = int(rng.choice(_CODEC_RATES, p=_CODEC_RATE_WEIGHTS))
  quality, channels = u(0.2, 0.95), int(rng.choice((1, 2)))
  has_codec = rng.random() < P_CODEC
  level = str(rng.choice(("peak", "rms")))
  level_db = u(-30.0, -0.5) if level == "peak" else u(-45.0, -12.0)
  return Chain(pool=pool, room=room if has_room else -1, room_wet=wet if has_room else 0.0, **curve,
               distortion=distortion if has_distortion else "none", drive_db=drive if has_distortion else 0.0,
               **(comp if has_comp else {}), noise=noise if has_noise else "none", snr_db=snr, hum_hz=hum,
               codec=codec if has_codec else "none", codec_rate=codec_rate if has_codec else 0,
               codec_quality=quality, codec_channels=channels, level=level, level_db=level_db)


def apply(chain: Chain, audio: np.ndarray, rate: int, t0: float, key: tuple[int, ...],
          stage_times: dict[str, float] | None = None) -> np.ndarray:
  """Applies `chain` to [t0, t0 + frames / rate) of a clip.

  Args:
    chain: the clip's chain (`draw`, or `DRY` for none).
    audio: float32 [frames, channels], 1 or 2 channels.
    rate: sample rate in Hz.
    t0: clip time of the first frame in seconds (noise is a function of clip time, not of the window).
    key: the clip's integer key; seeds the noise blocks.
    stage_times: if given, each stage's seconds are added under its name (experiments/bench_chains.py).

  Returns:
    float32 [frames, 2]: the room is recorded by a stereo pair, so mono comes out stereo.
  """
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 2 or audio.shape[1] not in (1, 2):
    raise ValueError(f"audio must be [frames, 1 or 2], got {audio.shape}")
  # Work as float64 [2, frames]: scipy's lfilter converts float32 anyway, and contiguous rows filter faster.
  x = np.repeat(audio.T, 2, axis=0) if audio.shape[1] == 1 else audio.T.copy()
  x = x.astype(np.float64)
  frames = x.shape[1]
  if frames == 0:
    return np.zeros((0, 2), np.float32)
  clock = _Clock(stage_times)
  if chain.room >= 0 and chain.room_wet > 0:
    x = _room(x, room_ir(chain.room, rate, chain.pool), chain.room_wet)
    clock("room")
  if chain.curve != "flat":
    from scipy.signal import sosfilt

    x = sosfilt(_curve_sos(chain, rate), x, axis=-1)
    clock("eq")
  if chain.distortion != "none":
    x = distort(x, chain.distortion, chain.drive_db)
    clock("distortion")
  if chain.comp_ratio > 1:
    x = _compress(x, rate, chain)
    clock("compression")
  if chain.noise != "none":
    noise = _noise(chain, rate, t0, frames, tuple(int(k) for k in key))
    gain = np.sqrt(_power(x) / (_power(noise) + 1e-20) / 10 ** (chain.snr_db / 10))
    x = x + gain * noise
    clock("noise")
  if chain.level != "none":
    measure = np.max(np.abs(x)) if chain.level == "peak" else np.sqrt(_power(x))
    x = np.clip(x * (10 ** (chain.level_db / 20) / (measure + 1e-9)), -1.0, 1.0)
    clock("level")
  if chain.codec != "none":
    x = np.clip(_codec(x, rate, chain), -1.0, 1.0)
    clock("codec")
  return np.ascontiguousarray(x.T, np.float32)


class _Clock:
  """Adds the seconds since the last call to `times[stage]`; does nothing without a dict."""

  def __init__(self, times: dict[str, float] | None):
    self.times = times
    self.last = time.perf_counter() if times is not None else 0.0

  def __call__(self, stage: str):
    if self.times is not None:
      now = time.perf_counter()
      self.times[stage] = self.times.get(stage, 0.0) + now - self.last
      self.last = now


def _power(x: np.ndarray) -> float:
  return float(np.mean(x * x)) + 1e-12


def _room(x: np.ndarray, ir: np.ndarray, wet: float) -> np.ndarray:
  """Blends the dry stereo with the room pair's recording of the mid signal (one FFT in, one out per mic)."""
  import scipy.fft as sfft

  n = x.shape[1]
  size = sfft.next_fast_len(n + len(ir) - 1, real=True)
  mid = sfft.rfft(x.mean(axis=0).astype(np.float32), size)
  spectra = sfft.rfft(ir.T, size, axis=-1)  # [2, bins] complex64
  room = sfft.irfft(spectra * mid, size, axis=-1)[:, :n]
  return (1 - wet) * x + wet * room


@functools.lru_cache(maxsize=1024)
def _curve_sos(chain: Chain, rate: int) -> np.ndarray:
  """The mic curve as one second-order-section cascade (corners kept below Nyquist)."""
  from scipy.signal import butter

  nyq = 0.45 * rate
  sections = []
  if chain.hp_hz > 0:
    sections.append(butter(2, min(chain.hp_hz, nyq), "highpass", fs=rate, output="sos"))
  if 0 < chain.lp_hz < nyq:
    sections.append(butter(4, chain.lp_hz, "lowpass", fs=rate, output="sos"))
  if chain.peak_db and chain.peak_hz < nyq:
    sections.append(_biquad("peak", chain.peak_hz, chain.peak_db, chain.peak_q, rate))
  if chain.shelf_db and chain.shelf_hz < nyq:
    sections.append(_biquad("highshelf", chain.shelf_hz, chain.shelf_db, 0.707, rate))
  return np.concatenate(sections) if sections else np.array([[1.0, 0, 0, 1.0, 0, 0]])


def _biquad(kind: str, f0: float, gain_db: float, q: float, rate: int) -> np.ndarray:
  """An RBJ audio-EQ-cookbook peaking or high-shelf biquad as one SOS row."""
  a_ = 10 ** (gain_db / 40)
  w0 = 2 * np.pi * f0 / rate
  cos, alpha = np.cos(w0), np.sin(w0) / (2 * q)
  if kind == "peak":
    b = [1 + alpha * a_, -2 * cos, 1 - alpha * a_]
    a = [1 + alpha / a_, -2 * cos, 1 - alpha / a_]
  else:
    s = 2 * np.sqrt(a_) * alpha
    b = [a_ * ((a_ + 1) + (a_ - 1) * cos + s), -2 * a_ * ((a_ - 1) + (a_ + 1) * cos), a_ * ((a_ + 1) + (a_ - 1) * cos - s)]
    a = [(a_ + 1) - (a_ - 1) * cos + s, 2 * ((a_ - 1) - (a_ + 1) * cos), (a_ + 1) - (a_ - 1) * cos - s]
  return (np.concatenate([b, a]) / a[0])[None]


def distort(x: np.ndarray, kind: str, drive_db: float) -> np.ndarray:
  """Drives the signal into a static curve and scales it back, so the level stays about the same.

  The drive is relative to the signal's RMS (scaled to 0.25 first): 0 dB barely bends the peaks, 18 dB
  flattens most of the waveform, whatever the clip's own loudness.
  """
  rms = np.sqrt(_power(x))
  g = 10 ** (drive_db / 20) * 0.25 / rms
  y = (g * x).astype(np.float32)  # float32 halves the cost of tanh; the curve needs no more
  if kind == "tanh":
    y = np.tanh(y)
  elif kind == "soft":  # cubic soft clip: linear-ish below 1, flat at 2/3 beyond
    y = np.clip(y, -1.0, 1.0)
    y = y - y * y * y / 3  # products: a float power costs several times more
  else:  # tube-ish: a biased tanh clips one half-wave earlier, giving even harmonics; DC removed by the bias term
    y = np.tanh(y + 0.3) - np.tanh(0.3)
  return y / g


def _compress(x: np.ndarray, rate: int, chain: Chain) -> np.ndarray:
  """A stereo-linked feed-forward compressor: threshold relative to the signal's RMS, drawn ratio and times."""
  from scipy.signal import lfilter

  a = np.exp(-1.0 / (chain.comp_attack_ms * 1e-3 * rate))
  env = lfilter([1 - a], [1, -a], np.mean(x * x, axis=0))  # one-pole mean square: the detector
  env_db = 10 * np.log10(env + 1e-12)
  threshold = 10 * np.log10(_power(x)) + chain.comp_threshold_db
  reduce_db = np.maximum(env_db - threshold, 0.0) * (1 - 1 / chain.comp_ratio)
  r = np.exp(-1.0 / (chain.comp_release_ms * 1e-3 * rate))
  reduce_db = lfilter([1 - r], [1, -r], reduce_db)  # smooths the gain: the release
  return x * 10 ** (-reduce_db / 20)


_WARM = 0.25  # s of noise generated before the window so IIR-coloured noise has settled


def _blocks(key: tuple[int, ...], start: int, stop: int, rate: int) -> np.ndarray:
  """Uniform noise in [-sqrt(3), sqrt(3)) (unit variance) for samples [start, stop) of clip time: float64 [n].

  Block b (1 s of samples) always comes from default_rng([*key, 7, b]), so any window reads the same noise
  at the same clip time. Uniform draws cost a third of normal ones; after colouring they are as good.
  """
  first, last = start // rate, -(-stop // rate)
  parts = []
  for b in range(first, last):
    seed = [*key, 7, b] if b >= 0 else [*key, 8, -b]  # pre-roll before the clip's start: its own blocks
    parts.append(np.random.default_rng(seed).random(rate, dtype=np.float32))
  block = np.concatenate(parts)[start - first * rate: stop - first * rate]
  return (block - np.float32(0.5)).astype(np.float64) * np.sqrt(12.0)


def _noise(chain: Chain, rate: int, t0: float, frames: int, key: tuple[int, ...]) -> np.ndarray:
  """The noise floor for [t0, t0 + frames / rate) of the clip: [2, frames], unscaled.

  One mono stream is generated and coloured; the right channel is the same stream 0.25 s earlier. Noise
  that far apart is uncorrelated, so the pair sounds decorrelated (as a diffuse background or two preamps
  would) at half the cost of two streams.
  """
  from scipy.signal import butter, lfilter, sosfilt

  s0 = int(round(t0 * rate))
  kind = chain.noise
  lag = warm = int(_WARM * rate)
  if kind == "hum":  # mains: the fundamental and falling harmonics, phases fixed per clip, plus a little hiss
    hrng = np.random.default_rng([*key, 7, 1 << 30])
    amps, phases = hrng.uniform(0.1, 1.0, 6) / np.arange(1, 7), hrng.uniform(0, 2 * np.pi, 6)
    # Hum repeats every mains cycle: tabulate one cycle and look it up by phase (sin per sample costs more).
    # The phase is reduced modulo a cycle in integers, so late clip times keep full precision.
    grid = np.arange(4097) / 4096
    table = sum(amps[h] * np.sin(2 * np.pi * (h + 1) * grid + phases[h]) for h in range(6)
                if chain.hum_hz * (h + 1) < 0.45 * rate)
    cycle = (s0 - lag + np.arange(frames + lag)) * int(chain.hum_hz) % rate
    y = np.interp(cycle * (4096 / rate), np.arange(4097), table)
    y += 0.02 * _blocks(key, s0 - lag, s0 + frames, rate)
    warm = 0
  elif kind == "white":
    y, warm = _blocks(key, s0 - lag, s0 + frames, rate), 0
  else:
    w = _blocks(key, s0 - warm - lag, s0 + frames, rate)
    if kind == "pink":  # a 3-pole, 3-zero fit of 1/f (about +-0.5 dB over the audio band)
      y = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                  [1, -2.494956002, 2.017265875, -0.522189400], w)
    elif kind == "brown":  # leaky integrator (1/f^2 above ~8 Hz at 48 kHz) with a 20 Hz high-pass against drift
      y = sosfilt(np.concatenate([butter(1, 20, "highpass", fs=rate, output="sos"), [[1, 0, 0, 1, -0.999, 0]]]), w)
    elif kind == "babble":  # speech-band noise, amplitude-modulated at syllable rate (~4 Hz) like far-off talk
      band = sosfilt(butter(2, [300, min(3000, 0.45 * rate)], "bandpass", fs=rate, output="sos"), w)
      # The envelope is the same white noise low-passed at 4 Hz: it shares no band with the speech band,
      # so the two are nearly independent.
      env = np.abs(sosfilt(butter(2, 4.0, fs=rate, output="sos"), w))
      y = band * (0.3 + env / (np.sqrt(np.mean(env**2)) + 1e-12))
    else:  # crackle: sparse drops (~300/s) of random size, each a short high-passed burst
      # |w| / sqrt(3) is uniform on [0, 1): it exceeds 1 - p with probability p, and by a uniform fraction of p.
      p = 300 / rate
      hits = np.flatnonzero(np.abs(w) > np.sqrt(3.0) * (1 - p))
      drops = np.zeros_like(w)
      excess = (np.abs(w[hits]) / np.sqrt(3.0) - (1 - p)) / p
      drops[hits] = np.sign(w[hits]) * excess**3
      y = sosfilt(np.concatenate([butter(2, min(1500, 0.4 * rate), "highpass", fs=rate, output="sos"),
                                  [[1, 0, 0, 1, -0.6, 0]]]), drops)
  return np.stack([y[warm + lag:], y[warm:warm + frames]])


def _codec(x: np.ndarray, rate: int, chain: Chain) -> np.ndarray:
  """Round-trips [2, n] through MP3 or Ogg Vorbis in memory at chain.codec_rate (never above `rate`)."""
  import soundfile as sf
  import soxr

  n = x.shape[1]
  codec_rate = min(chain.codec_rate, rate) if chain.codec == "vorbis" else max(
      (r for r in _CODEC_RATES if r <= min(chain.codec_rate, rate)), default=_CODEC_RATES[0])
  y = x.mean(axis=0, keepdims=True) if chain.codec_channels == 1 else x
  y = np.ascontiguousarray(y.T, np.float32)
  if codec_rate != rate:
    y = soxr.resample(y, rate, codec_rate, quality="MQ")
  buf = io.BytesIO()
  if chain.codec == "mp3":
    sf.write(buf, y, codec_rate, format="MP3", subtype="MPEG_LAYER_III", compression_level=chain.codec_quality)
  else:
    sf.write(buf, y, codec_rate, format="OGG", subtype="VORBIS", compression_level=chain.codec_quality)
  buf.seek(0)
  y, _ = sf.read(buf, dtype="float32", always_2d=True)
  if codec_rate != rate:
    y = soxr.resample(y, codec_rate, rate, quality="MQ")
  out = np.zeros((x.shape[0], n))
  m = min(n, len(y))
  out[:, :m] = y[:m].T  # a mono file goes back to both channels
  return out
