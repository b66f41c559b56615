"""Every config field: its type, meaning and allowed values, for `validate` and `describe`.

`FIELDS` is the one list of fields: `validate(cfg)` checks a config against it
(and against the cross-field rules in `RULES`) and `describe(cfg)` documents it.
Only os and math are imported, so validating costs milliseconds and works in any
process, before jax or keras load.
"""

from __future__ import annotations

import math
import os

__all__ = ["ConfigError", "FIELDS", "RESUME_SAFE", "RULES", "Field", "Rule", "describe", "validate"]


class ConfigError(ValueError):
  """A config that cannot run as given; the message lists every problem, one per line."""

  def __init__(self, problems: list[str], hint: str = ""):
    self.problems = list(problems)
    n = len(self.problems)
    super().__init__(f"{n} config problem{'s' if n != 1 else ''}:\n" + "\n".join(f"  {p}" for p in self.problems)
                     + (f"\n{hint}" if hint else ""))


# --- single-field constraints: each has `text` (for docs) and `problem(value)` (None when fine) ---


class Range:
  """Allows numbers between optional bounds; `lo_open`/`hi_open` exclude the bound itself."""

  def __init__(self, lo=None, hi=None, lo_open=False, hi_open=False, note=""):
    self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
    if lo is not None and hi is not None:
      self.text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
      self.text = f"{'>' if lo_open else '>='} {lo:g}"
    else:
      self.text = f"{'<' if hi_open else '<='} {hi:g}"
    self.text += note

  def problem(self, v):
    too_low = self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)
    too_high = self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)
    if too_low or too_high:
      return f"must be {'in ' if self.lo is not None and self.hi is not None else ''}{self.text}"
    return None


class OneOf:
  """Allows a fixed set of strings."""

  def __init__(self, *choices):
    self.choices = choices
    self.text = "one of " + ", ".join(choices)

  def problem(self, v):
    return None if v in self.choices else f"choose {self.text}"


class Text:
  """Allows any non-empty string."""

  text = "non-empty text"

  def problem(self, v):
    return None if v.strip() else "must not be empty"


class Weights:
  """Allows imagenet, musicnn, none, an existing file or a TensorFlow checkpoint (model.py reads the names
  case-insensitively)."""

  text = "imagenet, musicnn, none, the path of an existing Keras .h5 file or a musicnn checkpoint folder"

  def problem(self, v):
    if v.lower() in ("imagenet", "musicnn", "none") or os.path.isfile(v) or os.path.isfile(os.path.join(v, ".index")):
      return None
    return f"no such file; choose {self.text}"


class DataPath:
  """Allows synth or an existing directory."""

  text = "synth or an existing dataset directory"

  def problem(self, v):
    return None if v == "synth" or os.path.isdir(v) else f"not a directory; choose {self.text}"


class CacheDir:
  """Allows auto, none or a folder path (created on first use, so it need not exist yet)."""

  text = "auto, none or a folder (created when missing)"

  def problem(self, v):
    if not v.strip():
      return f"must not be empty; choose {self.text}"
    if v not in ("auto", "none") and os.path.exists(v) and not os.path.isdir(v):
      return f"is a file, not a folder; choose {self.text}"
    return None


class ClassList:
  """Allows auto or at least 2 distinct comma-separated class names."""

  text = "auto, or 2 or more distinct class names joined by commas (guitar,drum,violin,piano)"

  def problem(self, v):
    if v == "auto":
      return None
    names = [n.strip().lower() for n in v.split(",")]
    if len(names) < 2 or not all(names):
      return f"must name 2 or more classes, none empty; choose {self.text}"
    twice = sorted({n for n in names if names.count(n) > 1})
    return f"names {', '.join(twice)} more than once" if twice else None


ENGINES = ("soundfont", "physical", "spectral", "fluid", "freepats")  # data/engines.py's ENGINES (a test keeps them equal): no data import here


class EngineList:
  """Allows one or more distinct sound engines of the embedded set, joined by commas."""

  text = "1 or more of soundfont, physical, spectral, fluid, freepats joined by commas"

  def problem(self, v):
    names = [n.strip() for n in v.split(",")]
    bad = [n for n in names if n not in ENGINES]
    if bad or not names:
      return f"unknown engine {', '.join(repr(n) for n in bad) or repr(v)}; choose {self.text}"
    return f"names an engine more than once; choose {self.text}" if len(set(names)) != len(names) else None


class Numbers:
  """Allows a tuple (or JSON list) of finite numbers: `count` of them, > 0, ascending as asked."""

  def __init__(self, count=None, positive=False, ordered=False, text=""):
    self.count, self.positive, self.ordered, self.text = count, positive, ordered, text

  def problem(self, v):
    if not all(_is_number(x) and math.isfinite(x) for x in v):
      return f"must hold finite numbers only; {self.text}"
    if self.count is not None and len(v) != self.count:
      return f"must hold {self.count} numbers; {self.text}"
    if self.positive and any(x <= 0 for x in v):
      return f"must hold numbers > 0; {self.text}"
    if self.ordered and list(v) != sorted(v):
      return f"must be ascending; {self.text}"
    return None


class Field:
  """One config field: `type` (int, float, bool, str or tuple), `doc` (its meaning) and `rule` (allowed values)."""

  __slots__ = ("type", "doc", "rule")

  def __init__(self, type_, doc, rule=None):
    self.type, self.doc, self.rule = type_, doc, rule

  @property
  def allowed(self) -> str:
    """Returns the single-field constraint as text."""
    if self.rule:
      return self.rule.text
    return "true or false" if self.type is bool else "any"

  def __repr__(self):
    return f"Field({self.type.__name__}, {self.doc!r}, allowed={self.allowed!r})"


_PATH_RULES = (Weights, DataPath, CacheDir)  # they look at this machine's files
_POS = Range(0, lo_open=True)  # sizes, counts and lengths
_NONNEG = Range(0)
_PROB = Range(0, 1)
_AT_LEAST_1 = Range(1)

# Ordered as in baseline.py, so describe() reads like the config.
FIELDS: dict[str, Field] = {
    "name": Field(str, "config name, written to config.json", Text()),
    "seed": Field(int, "seed of weights, data order and augmentation; -1 draws one and logs it", Range(-1)),
    # model
    "model.backbone": Field(str, "image backbone the log-mel goes through (cnn8+musicnn: both, their "
                                 "features side by side)", OneOf("resnet50", "cnn8", "musicnn", "cnn8+musicnn")),
    "model.weights": Field(str, "initial backbone weights: keras' ImageNet file, musicnn's MagnaTagATune "
                                "checkpoint (from its PyPI wheel), random, or a local file",
                           Weights()),
    "model.pool": Field(str, "global pooling of the backbone's last feature map: its mean, its max, or (panns) "
                             "the mean over frequency, then the max plus the mean over time",
                        OneOf("avg", "max", "panns")),
    "model.dropout": Field(float, "dropout rate before the classifier", Range(0, 1, hi_open=True)),
    "model.branch_dropout": Field(float, "cnn8+musicnn: rate at which training drops a sample's musicnn features "
                                         "whole, so that cnn8 learns to classify alone", Range(0, 1, hi_open=True)),
    "model.freeze": Field(str, "backbone weights held fixed (BatchNorm in inference mode): none; backbone (only the "
                               "classifier trains: a probe of pretrained weights); features (musicnn: its front- and "
                               "mid-end, so its back-end's dense layer trains with the classifier); with cnn8+musicnn both "
                               "act on the musicnn half, and cnn8 trains",
                          OneOf("none", "backbone", "features")),
    "model.head_init": Field(str, "classifier's first weights: random, or (tags, with musicnn's checkpoint) each "
                                  "class named like a MagnaTagATune tag starts as that tag's output unit",
                             OneOf("random", "tags")),
    "model.width": Field(float, "channel multiplier of cnn8's convolutions (1: 32-64-128-256)", Range(0.25, 4)),
    "model.bn_momentum": Field(float, "BatchNorm running-statistics momentum (Keras convention); 0 keeps keras' 0.99",
                               Range(0, 1, hi_open=True)),
    # audio
    "audio.sample_rate": Field(int, "sample rate clips are resampled to, Hz", _POS),
    "audio.stft_window_size": Field(int, "STFT window and FFT length, samples", _POS),
    "audio.hop_size": Field(int, "STFT hop between spectrogram frames, samples", _POS),
    "audio.mel_bins": Field(int, "mel filters: the spectrogram's height", _POS),
    "audio.fmin": Field(float, "lowest mel filter frequency, Hz", _NONNEG),
    "audio.fmax": Field(float, "highest mel filter frequency, Hz", _POS),
    "audio.top_db": Field(float, "dynamic range kept below each chunk's peak, dB (librosa's top_db)", _POS),
    "audio.training_chunk_seconds": Field(float, "length of the random window cut from a clip for training, s",
                                          _POS),
    "audio.spectrogram_normalization": Field(str, "none (the recipe's), or frequency: each mel bin standardized "
                                             "over the chunk's frames, inside the model",
                                             OneOf("none", "frequency")),
    "audio.features_on_device": Field(bool, "compute the log-mel inside the jitted train step from waveforms"),
    # augmentation
    "augmentation.mix_audio": Field(str, "mix pairs of clips and their targets within a batch",
                                    OneOf("disabled", "mixup")),
    "augmentation.mix_concentration": Field(float, "alpha of the Beta(alpha, alpha) mixing weight", _POS),
    "augmentation.mix_iterations": Field(int, "rounds of mixing per batch", _AT_LEAST_1),
    "augmentation.mix_probability": Field(float, "probability that a clip is mixed in a round", _PROB),
    "augmentation.gain_db": Field(float, "random gain drawn from +-gain_db, dB; 0 is off", _NONNEG),
    "augmentation.noise_prob": Field(float, "probability of adding noise to a training clip", _PROB),
    "augmentation.noise_snr_db": Field(tuple, "signal-to-noise range (low, high) of the added noise, dB",
                                       Numbers(count=2, ordered=True, text="2 numbers, low <= high")),
    "augmentation.eq_prob": Field(float, "probability of a random peaking EQ", _PROB),
    "augmentation.reverb_prob": Field(float, "probability of a synthetic reverb", _PROB),
    "augmentation.pitch_prob": Field(float, "probability of a random pitch shift", _PROB),
    "augmentation.pitch_semitones": Field(float, "largest pitch shift either way, semitones", _NONNEG),
    "augmentation.freq_masks": Field(int, "SpecAugment frequency masks per training chunk", _NONNEG),
    "augmentation.freq_mask_bins": Field(int, "widest frequency mask, mel bins", _NONNEG),
    "augmentation.time_masks": Field(int, "SpecAugment time masks per training chunk", _NONNEG),
    "augmentation.time_mask_frames": Field(int, "widest time mask, frames", _NONNEG),
    # data
    "data.path": Field(str, "dataset: the embedded synth set, or a folder (Kaggle layout or a folder per class)",
                       DataPath()),
    "data.synth_seed": Field(int, "seed of the embedded synth set's clips", _NONNEG),
    "data.synth_engines": Field(str, "sound engines the embedded train split is drawn from (test and unseen: always "
                                "soundfont, physical and spectral; fluid needs FluidR3_GM.sf2, data/soundfonts.py; freepats the FreePats "
                                "patches, data/freepats.py)",
                                EngineList()),
    "data.synth_chain_prob": Field(float, "share of embedded train clips recorded through a random room, mic, noise "
                                   "and codec chain (test and unseen: 0.75)", _PROB),
    "data.synth_voice_spread": Field(float, "embedded train clips of the model engines play a voice of their own, "
                                     "each setting drawn between two listed voices and up to this far past them "
                                     "(0: the listed voices; test and unseen: 0)", Range(0.0, 2.0)),
    "data.synth_distortion_prob": Field(float, "share of the chained embedded train clips whose chain distorts "
                                        "(test and unseen: 0.1)", _PROB),
    "data.synth_guitar_amp": Field(float, "share of the model engines' embedded train guitar clips played through "
                                   "an overdriven amplifier and its cabinet (test and unseen: 0)", _PROB),
    "data.synth_formant_shift": Field(int, "embedded train clips of the sample libraries are rendered k semitones "
                                      "up and played back k down, k drawn from -this..this: the notes stay, the "
                                      "library's resonances move (test and unseen: 0)", Range(0, 6)),
    "data.classes": Field(str, "the label set and its order: auto reads it from the training split (the embedded "
                          "set's families first, then the rest alphabetically); a list also rejects other labels",
                          ClassList()),
    "data.audio_column": Field(str, "CSV column naming each clip's audio file", Text()),
    "data.label_column": Field(str, "CSV column holding each clip's class (several joined by data.label_separator)",
                               Text()),
    "data.label_separator": Field(str, "joins several labels in one label cell (multi-label); empty: one label per "
                                  "cell"),
    "data.label_columns": Field(str, "comma-separated CSV columns holding 0/1 per class (multi-label), read instead "
                                "of data.label_column; empty: off"),
    "data.validation_strategy": Field(str, "how validation clips are held out: stratified k-fold, one voice per "
                                      "class and engine (synth only), or every clip of one sound engine (synth only)",
                                      OneOf("kfold", "programs", "engine")),
    "data.validation_engine": Field(str, "with validation_strategy=engine: the engine held out of training (its "
                                    "clips of the benchmark mix validate; fluid or freepats, in no benchmark clip, "
                                    "those the benchmark with it added would give it)", OneOf(*ENGINES)),
    "data.num_folds": Field(int, "k of the stratified k-fold split", Range(2)),
    "data.validation_fold": Field(int, "the fold held out for validation; -1 with validation_strategy=engine: "
                                  "every clip of the held-out engine", Range(-1)),
    "data.fold_seed": Field(int, "seed of the fold split and of data_sample's subsampling", _NONNEG),
    "data.data_sample": Field(float, "fraction of each class's train and validation clips used",
                              Range(0, 1, lo_open=True)),
    "data.sampling": Field(str, "training clip order: natural (each clip once per epoch) or balanced (each class "
                           "equally often in every batch)", OneOf("natural", "balanced")),
    "data.num_workers": Field(int, "data-loading worker processes; 0 loads in the main process", _NONNEG),
    "data.skip_bad_files": Field(bool, "leave out (and list) files that fail to decode instead of stopping"),
    "data.cache_dir": Field(str, "on-disk log-mel cache: auto ($INSTRUMENTS_JAX_CACHE or ~/.cache), none, or a "
                            "folder", CacheDir()),
    "data.max_clip_seconds": Field(float, "read each clip up to its first this many seconds, in training and "
                                   "evaluation; 0 reads whole clips", _NONNEG),
    "data.length_buckets": Field(tuple, "padded lengths for clips shorter than a chunk, s; () pads to the full chunk",
                                 Numbers(positive=True, text="numbers > 0, may be empty")),
    # train
    "train.batch_size": Field(int, "clips per training step, over all devices", _POS),
    "train.drop_last_batch": Field(bool, "drop each epoch's last incomplete batch"),
    "train.epochs": Field(int, "passes over the training clips", _POS),
    "train.evaluation_epochs": Field(int, "validate every this many epochs (and after the last)", _AT_LEAST_1),
    "train.optimizer": Field(str, "AdamW, or SGD with momentum 0.9", OneOf("adamw", "sgd")),
    "train.learning_rate": Field(float, "peak learning rate", _NONNEG),
    "train.weight_decay": Field(float, "decoupled weight decay", _NONNEG),
    "train.schedule": Field(str, "learning rate over all steps: cosine to 0, or constant",
                            OneOf("cosine", "constant")),
    "train.warmup_epochs": Field(float, "linear warm-up from 0 before the cosine, epochs", _NONNEG),
    "train.gradient_clip": Field(float, "global-norm gradient clipping; 0 is off", _NONNEG),
    "train.grad_accumulation": Field(int, "steps whose gradients make one update", _AT_LEAST_1),
    "train.average_from": Field(float, "evaluate, save for inference and export the mean of the weights after "
                                "every step from this fraction of training on (stochastic weight averaging; "
                                "BatchNorm statistics too); 0 is off: the last weights", _PROB),
    "train.loss": Field(str, "per-class sigmoid BCE (the recipe's) or softmax cross-entropy", OneOf("bce", "softmax")),
    "train.label_smoothing": Field(float, "the training loss's targets move this far towards uniform: each class "
                                   "(1-a)*y + a/2 for BCE, (1-a)*y + a/classes for softmax; 0 is off",
                                   Range(0, 1, hi_open=True)),
    "train.mixed_precision": Field(bool, "train in mixed bfloat16 (float32 weights)"),
    "train.log_every_steps": Field(int, "log loss and throughput every this many steps", _AT_LEAST_1),
    "train.checkpoint_every_steps": Field(int, "checkpoint every this many steps and at each epoch end; 0: epoch "
                                          "ends only", _NONNEG),
    "train.keep_checkpoints": Field(int, "newest checkpoints kept on disk", _AT_LEAST_1),
    "train.restart": Field(bool, "start over: move a run already in the workdir to <workdir>.before-restart-<time> "
                           "(a re-run without it resumes)"),
    # prediction
    "prediction.inference_chunk_seconds": Field(float, "chunk length for evaluation and prediction, s", _POS),
    "prediction.max_inference_chunk_seconds": Field(float, "most of a clip evaluated, s; its chunks' predictions "
                                                    "are averaged", _POS),
    "prediction.probability_threshold": Field(float, "predict lists every class whose probability reaches this",
                                              _PROB),
    "prediction.batch_size": Field(int, "chunks per evaluation and prediction batch", _POS),
    "prediction.mixed_precision": Field(bool, "evaluate and predict in bfloat16"),
    # logging
    "logging.number_of_audios": Field(int, "clips shown in the predictions figure", _AT_LEAST_1),
}

# Fields a resumed run may change: they decide when things are logged, evaluated, kept or loaded
# from, never what a checkpoint holds. Any other change on resume is refused (rundir.open_run).
RESUME_SAFE = frozenset({
    "name", "train.restart", "train.log_every_steps", "train.evaluation_epochs", "train.checkpoint_every_steps",
    "train.keep_checkpoints", "data.num_workers", "data.cache_dir", "prediction.batch_size",
    "prediction.probability_threshold", "logging.number_of_audios"})

SECTIONS = tuple(dict.fromkeys(p.split(".")[0] for p in FIELDS if "." in p))


# --- cross-field rules: checked once every field they read is valid on its own ---


class Rule:
  """A constraint across fields: `paths` read (the first owns it in docs), `text`, and `check(values, devices)`."""

  __slots__ = ("paths", "text", "check")

  def __init__(self, paths, text, check):
    self.paths, self.text, self.check = paths, text, check


def _imagenet_for_resnet(v, _):
  if v["model.weights"].lower() == "imagenet" and v["model.backbone"] != "resnet50":
    return (f"model.weights='imagenet': only model.backbone=resnet50 has ImageNet weights; "
            f"{v['model.backbone']} takes none or a weights file saved from it")


# The backbones with musicnn inside: its checkpoint, its front end and its back-end apply to both.
MUSICNN_BACKBONES = ("musicnn", "cnn8+musicnn")


def _features_are_musicnn(v, _):
  if v["model.freeze"] == "features" and v["model.backbone"] not in MUSICNN_BACKBONES:
    return (f"model.freeze='features': only model.backbone=musicnn (or cnn8+musicnn) has a back-end to train apart from its "
            f"features; freeze none or the whole backbone of {v['model.backbone']}")


def _tags_need_musicnn(v, _):
  if v["model.head_init"] == "tags" and (v["model.backbone"] != "musicnn" or v["model.weights"].lower() == "none"):
    return (f"model.head_init='tags': the tag units come from musicnn's checkpoint and read its 200 features "
            f"alone; set model.backbone=musicnn "
            f"and model.weights=musicnn (or a musicnn checkpoint folder), or model.head_init=random")


def _musicnn_weights(v, _):
  if v["model.weights"].lower() == "musicnn" and v["model.backbone"] not in MUSICNN_BACKBONES:
    return (f"model.weights='musicnn': that checkpoint is musicnn's; set model.backbone=musicnn (or cnn8+musicnn), or "
            f"model.weights=none for {v['model.backbone']}")


# What musicnn's checkpoint heard in training (instruments_jax/musicnn.py): its filters mean nothing on another front end.
MUSICNN_AUDIO = {"audio.sample_rate": 16000, "audio.stft_window_size": 512, "audio.hop_size": 256, "audio.mel_bins": 96,
                 "audio.fmin": 0.0, "audio.fmax": 8000.0}


# cnn8+musicnn may hear a wider band: the same frames at k x 16 kHz (k x 512 points, hop k x 256) through more
# bands spaced as musicnn's, so its first 96 are musicnn's own (model.py crops them for musicnn and takes the
# 20 log10 k dB that k times the points add off); cnn8 hears all 117, up to 15.7 kHz.
MUSICNN_WIDE_AUDIO = {"audio.sample_rate": 32000, "audio.stft_window_size": 1024, "audio.hop_size": 512,
                      "audio.mel_bins": 117, "audio.fmin": 0.0, "audio.fmax": 15688.0}


def musicnn_bands_match(v) -> bool:
  """Whether the front end's first 96 bands and frames are musicnn's: its filters, at k x its sample rate."""
  import librosa

  m = MUSICNN_AUDIO
  k = v["audio.sample_rate"] / m["audio.sample_rate"]
  if (v["audio.stft_window_size"] != m["audio.stft_window_size"] * k or v["audio.hop_size"] != m["audio.hop_size"] * k
      or v["audio.fmin"] != m["audio.fmin"] or v["audio.mel_bins"] < m["audio.mel_bins"]
      or v["audio.fmax"] < m["audio.fmax"]):
    return False
  edges = m["audio.mel_bins"] + 2  # each band's lower edge, centre and upper edge
  ours = librosa.mel_frequencies(v["audio.mel_bins"] + 2, fmin=m["audio.fmin"], fmax=float(v["audio.fmax"]))[:edges]
  theirs = librosa.mel_frequencies(edges, fmin=m["audio.fmin"], fmax=m["audio.fmax"])
  return bool(abs(ours - theirs).max() < 0.5)  # Hz


def _musicnn_front_end(v, _):
  b = v["model.backbone"]
  if b not in MUSICNN_BACKBONES:
    return None
  if v["audio.mel_bins"] != 96 and b == "musicnn":
    return f"audio.mel_bins={v['audio.mel_bins']!r}: model.backbone=musicnn takes 96 mel bins"
  if v["audio.mel_bins"] < 96:
    return f"audio.mel_bins={v['audio.mel_bins']!r}: model.backbone={b} takes at least 96 mel bins"
  if v["model.pool"] != "avg" and b == "musicnn":
    return (f"model.pool={v['model.pool']!r}: musicnn pools with its own back-end (the max and the mean over "
            f"time); leave model.pool=avg")
  if v["model.pool"] == "panns" and b == "cnn8+musicnn":
    return ("model.pool='panns': cnn8+musicnn sets cnn8's pooled features beside musicnn's; pool cnn8 with "
            "avg or max")
  if str(v["model.weights"]).lower() == "none":
    return None
  off = [f"{p}={v[p]!r} (wants {want!r})" for p, want in MUSICNN_AUDIO.items() if v[p] != want]
  if not off or (b == "cnn8+musicnn" and musicnn_bands_match(v)):
    return None
  wide = ("" if b == "musicnn" else
          "; or its wider band, whose first 96 bands are musicnn's: " +
          ", ".join(f"{p}={want!r}" for p, want in MUSICNN_WIDE_AUDIO.items()))
  return (f"model.backbone={b} with musicnn's checkpoint: it was trained on 16 kHz log-mels of 512-point frames, "
          "hop 256, 96 bands over 0-8000 Hz; set " + ", ".join(off) + wide)


def _branch_dropout_for_hybrid(v, _):
  if v["model.branch_dropout"] and v["model.backbone"] != "cnn8+musicnn":
    return (f"model.branch_dropout={v['model.branch_dropout']!r}: only model.backbone=cnn8+musicnn has a musicnn "
            f"branch to drop; leave it 0 for {v['model.backbone']}")


def _width_for_cnn8(v, _):
  if v["model.width"] != 1 and "cnn8" not in v["model.backbone"]:
    return (f"model.width={v['model.width']!r}: only model.backbone=cnn8 (and cnn8+musicnn's cnn8) has a width to set; "
            f"{v['model.backbone']}'s is fixed (leave model.width=1)")


def _nyquist(v, _):
  sr, fmax = v["audio.sample_rate"], v["audio.fmax"]
  if fmax > sr / 2:
    return f"audio.fmax={fmax!r}: must be <= audio.sample_rate / 2 = {sr / 2:g} Hz (Nyquist)"
  return None


def _fmin_below_fmax(v, _):
  if v["audio.fmin"] >= v["audio.fmax"]:
    return f"audio.fmin={v['audio.fmin']!r}: must be < audio.fmax={v['audio.fmax']!r}"
  return None


def _hop_within_window(v, _):
  if v["audio.hop_size"] > v["audio.stft_window_size"]:
    return (f"audio.hop_size={v['audio.hop_size']!r}: must be <= audio.stft_window_size="
            f"{v['audio.stft_window_size']!r}")
  return None


def _fold_in_range(v, _):
  fold, k = v["data.validation_fold"], v["data.num_folds"]
  if fold >= k:
    return f"data.validation_fold={fold!r}: must be in 0..{k - 1} (data.num_folds={k})"
  if fold < 0 and v["data.validation_strategy"] != "engine":
    return (f"data.validation_fold={fold!r}: -1 (every held-out clip) is for validation_strategy=engine, not "
            f"{v['data.validation_strategy']!r}; choose a fold in 0..{k - 1}")
  return None


def _programs_need_synth(v, _):
  if v["data.validation_strategy"] in ("programs", "engine") and v["data.path"] != "synth":
    return (f"data.validation_strategy={v['data.validation_strategy']!r}: holds out synth voices or engines, so it "
            f"needs data.path='synth' (got {v['data.path']!r}); use kfold for other data")
  return None


def _held_engine_in_mix(v, _):
  engines = [n.strip() for n in v["data.synth_engines"].split(",")]
  if v["data.validation_strategy"] == "engine" and engines == [v["data.validation_engine"]]:
    return (f"data.synth_engines={v['data.synth_engines']!r} with data.validation_engine="
            f"{v['data.validation_engine']!r}: holding out the only engine leaves nothing to train on")
  return None


def _balanced_without_buckets(v, _):
  if v["data.sampling"] == "balanced" and v["data.length_buckets"]:
    return (f"data.sampling='balanced' with data.length_buckets={tuple(v['data.length_buckets'])!r}: a batch holds "
            f"one bucket's clips, so it cannot also hold every class equally; choose one of them")
  return None


def _max_chunk_covers_chunk(v, _):
  chunk, cap = v["prediction.inference_chunk_seconds"], v["prediction.max_inference_chunk_seconds"]
  if cap < chunk:
    return (f"prediction.max_inference_chunk_seconds={cap!r}: must be >= "
            f"prediction.inference_chunk_seconds={chunk!r}")
  return None


def _warmup_within_training(v, _):
  if v["train.warmup_epochs"] > v["train.epochs"]:
    return f"train.warmup_epochs={v['train.warmup_epochs']!r}: must be <= train.epochs={v['train.epochs']!r}"
  return None


def _batch_over_devices(v, devices):
  b = v["train.batch_size"]
  if devices and b % devices:
    return f"train.batch_size={b} does not divide over {devices} devices; choose a multiple of {devices}"
  return None


def _masks_before_device_features(v, _):
  masks = {p: v[p] for p in ("augmentation.freq_masks", "augmentation.time_masks") if v[p] > 0}
  if v["audio.features_on_device"] and masks:
    given = ", ".join(f"{p}={n}" for p, n in masks.items())
    return (f"audio.features_on_device=True with {given}: SpecAugment runs in the data workers, before the "
            f"log-mel that features_on_device computes in the train step; set the masks to 0 or "
            f"audio.features_on_device=false")
  return None


RULES: tuple[Rule, ...] = (
    Rule(("model.weights", "model.backbone"), "imagenet only with model.backbone=resnet50", _imagenet_for_resnet),
    Rule(("model.branch_dropout", "model.backbone"), "0 unless model.backbone=cnn8+musicnn",
         _branch_dropout_for_hybrid),
    Rule(("model.width", "model.backbone"), "1 unless model.backbone=cnn8 or cnn8+musicnn", _width_for_cnn8),
    Rule(("model.weights", "model.backbone"), "musicnn only with model.backbone=musicnn or cnn8+musicnn", _musicnn_weights),
    Rule(("model.freeze", "model.backbone"), "features only with model.backbone=musicnn or cnn8+musicnn", _features_are_musicnn),
    Rule(("model.head_init", "model.backbone", "model.weights"), "tags only with musicnn's checkpoint",
         _tags_need_musicnn),
    Rule(("model.backbone", "model.pool", "model.weights", *MUSICNN_AUDIO),
         "musicnn (alone or beside cnn8): 96 mel bins, model.pool=avg (cnn8+musicnn: not panns); with its checkpoint, the front end it was trained on",
         _musicnn_front_end),
    Rule(("audio.fmax", "audio.sample_rate"), "<= audio.sample_rate / 2 (Nyquist)", _nyquist),
    Rule(("audio.fmin", "audio.fmax"), "< audio.fmax", _fmin_below_fmax),
    Rule(("audio.hop_size", "audio.stft_window_size"), "<= audio.stft_window_size", _hop_within_window),
    Rule(("audio.features_on_device", "augmentation.freq_masks", "augmentation.time_masks"),
         "false while SpecAugment masks are on (they run before the on-device log-mel)",
         _masks_before_device_features),
    Rule(("data.validation_strategy", "data.path"), "programs and engine need data.path=synth", _programs_need_synth),
    Rule(("data.validation_engine", "data.synth_engines", "data.validation_strategy"),
         "leaves data.synth_engines another engine to train on", _held_engine_in_mix),
    Rule(("data.validation_fold", "data.num_folds", "data.validation_strategy"),
         "< data.num_folds; -1 only with validation_strategy=engine", _fold_in_range),
    Rule(("data.sampling", "data.length_buckets"), "natural while data.length_buckets are set",
         _balanced_without_buckets),
    Rule(("train.batch_size",), "a multiple of the device count", _batch_over_devices),
    Rule(("train.warmup_epochs", "train.epochs"), "<= train.epochs", _warmup_within_training),
    Rule(("prediction.max_inference_chunk_seconds", "prediction.inference_chunk_seconds"),
         ">= prediction.inference_chunk_seconds", _max_chunk_covers_chunk),
)


# --- validate and describe ---


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_problem(field: Field, v):
  """Returns what is wrong with the type of `v`, or None."""
  t = field.type
  if t is bool:
    ok = isinstance(v, bool)
  elif t is int:
    ok = isinstance(v, int) and not isinstance(v, bool)
  elif t is float:
    if _is_number(v) and not math.isfinite(v):
      return "must be a finite number"
    ok = _is_number(v)  # an int is a fine float
  elif t is tuple:
    ok = isinstance(v, (tuple, list))  # config.json gives lists back
  else:
    ok = isinstance(v, t)
  return None if ok else f"must be {t.__name__}, got {type(v).__name__}"


def _as_dict(cfg):
  # A ConfigDict turns into plain dicts with FieldReferences resolved; a dict passes through.
  return cfg.to_dict() if hasattr(cfg, "to_dict") else cfg


def _is_section(v) -> bool:
  return hasattr(v, "items") and hasattr(v, "keys")


def _distance(a: str, b: str) -> int:
  """Returns the Levenshtein distance of a and b."""
  row = list(range(len(b) + 1))
  for i, ca in enumerate(a, 1):
    prev, row[0] = row[0], i
    for j, cb in enumerate(b, 1):
      prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
  return row[-1]


def suggest(path: str, known) -> str:
  """Returns "; did you mean X?" for the nearest known name within 3 edits, else ""."""
  best = min(known, key=lambda k: _distance(path, k), default=None)
  return f"; did you mean {best}?" if best is not None and _distance(path, best) <= 3 else ""


def _walk(node, prefix: str, values: dict, problems: list[str]) -> None:
  """Collects the leaves of `node` into `values`, reporting unknown fields and sections."""
  for key, v in node.items():
    path = f"{prefix}{key}"
    if path in FIELDS:
      values[path] = v
    elif path in SECTIONS:
      if _is_section(v):
        _walk(v, path + ".", values, problems)
      else:
        problems.append(f"{path}={v!r}: must be a section of fields, got {type(v).__name__}")
    elif not prefix and _is_section(v):
      hint = suggest(path, SECTIONS) or "; the sections are " + ", ".join(SECTIONS)
      problems.append(f"{path}: unknown section{hint}")
    else:
      problems.append(f"{path}={v!r}: unknown field{suggest(path, FIELDS)}")


def validate(cfg, device_count: int | None = None, check_paths: bool = True) -> None:
  """Checks every field of `cfg` (a ConfigDict or dict); raises one ConfigError listing all problems.

  With `device_count`, train.batch_size must also split evenly over that many devices.
  `check_paths=False` skips whether model.weights, data.path and data.cache_dir exist on
  this machine: a trained run's config is checked so, as inference reads none of them.
  """
  top = _as_dict(cfg)
  values: dict = {}
  problems: list[str] = []
  _walk(top, "", values, problems)
  ok = {}
  for path, field in FIELDS.items():
    if path not in values:
      section = path.split(".")[0] if "." in path else None
      if section is None or _is_section(top.get(section)):
        problems.append(f"{path}: missing ({field.type.__name__}, {field.allowed})")
      elif section not in top and path == next(p for p in FIELDS if p.startswith(section + ".")):
        problems.append(f"{section}: missing section")  # once, not once per field
      continue  # a section given as a scalar was reported by _walk
    v = values[path]
    why = _type_problem(field, v)
    if why is None and field.rule is not None and (check_paths or not isinstance(field.rule, _PATH_RULES)):
      why = field.rule.problem(v)
    if why is None:
      ok[path] = v
    else:
      problems.append(f"{path}={v!r}: {why}")
  for rule in RULES:
    if all(p in ok for p in rule.paths):
      why = rule.check(ok, device_count)
      if why:
        problems.append(why)
  if problems:
    raise ConfigError(problems)


def describe(cfg) -> str:
  """Returns a table of every field: path, type, value in `cfg`, allowed values and meaning."""
  values: dict = {}
  _walk(_as_dict(cfg), "", values, [])
  owned: dict[str, list[str]] = {}
  for rule in RULES:
    owned.setdefault(rule.paths[0], []).append(rule.text)
  rows = [("field", "type", "value", "allowed", "meaning")]
  for path, field in FIELDS.items():
    allowed = "; ".join([field.allowed] + owned.get(path, []))
    value = repr(values[path]) if path in values else "(missing)"
    resume = " (may change on resume)" if path in RESUME_SAFE else ""
    rows.append((path, field.type.__name__, value, allowed, field.doc + resume))
  widths = [max(len(r[i]) for r in rows) for i in range(4)]
  return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def changed_on_resume(old, new) -> list[tuple[str, object, object]]:
  """Returns (field, old value, new value) for each field outside RESUME_SAFE that differs between configs."""
  before, after = {}, {}
  _walk(_as_dict(old), "", before, [])
  _walk(_as_dict(new), "", after, [])
  norm = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v
  return [(p, before.get(p), after.get(p)) for p in FIELDS
          if p not in RESUME_SAFE and norm(before.get(p)) != norm(after.get(p))]
