"""Where clips and labels come from: the embedded synth set, the Kaggle CSV layout, or a folder per class.

Every source is a `Dataset`: a list of `Clip`s (name, label, duration, rate)
and `load(i, start, duration, sample_rate)` for any window of clip i. Nothing
here imports keras or jax, so grain worker processes stay light.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os

import numpy as np

from instruments_jax.data import audio, synth
from instruments_jax.data.audio import DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".aifc", ".opus")
# Spellings seen in the wild, after lower-casing and dropping a "sound_" prefix.
LABEL_ALIASES = {"guiatr": "guitar", "guitars": "guitar", "drums": "drum", "violins": "violin",
                 "fiddle": "violin", "pianos": "piano"}
MAC_METADATA_DIR = "__MACOSX"  # what macOS zips add beside the files (with a ._name resource fork per file)
KAGGLE_CSVS = {"train": "Metadata_Train.csv", "test": "Metadata_Test.csv", "unseen": "Metadata_Unseen.csv"}
KAGGLE_AUDIO_DIRS = {"train": ("Train_submission/Train_submission", "Train_submission"),
                     "test": ("Test_submission/Test_submission", "Test_submission"),
                     "unseen": ("Unseen_submission/Unseen_submission", "Unseen_submission")}


TRUE_CELLS, FALSE_CELLS = ("1", "1.0", "true", "yes"), ("0", "0.0", "false", "no", "")


def canonical_label(raw: str) -> str | None:
  """Returns the class name a label spelling means (`Sound_Guiatr` -> `guitar`, `Flute` -> `flute`); None if empty.

  Lower case, spaces to underscores, a `sound_` prefix dropped (the Kaggle CSV's), then the
  spellings of LABEL_ALIASES. A comma (which separates names in data.classes) becomes `_`.
  """
  name = raw.strip().lower().replace(" ", "_").replace(",", "_")
  if name.startswith("sound_"):
    name = name[len("sound_"):]
  name = LABEL_ALIASES.get(name, name)
  return name or None


def order_classes(names) -> tuple[str, ...]:
  """Returns class names in the stable order `data.classes=auto` uses: the embedded set's families first, in
  synth.FAMILIES order (guitar, drum, violin, piano, ...), then every other name alphabetically."""
  names = set(names)
  known = [f for f in synth.FAMILIES if f in names]
  return tuple(known + sorted(names - set(known)))


def configured_classes(data_cfg) -> tuple[str, ...] | None:
  """Returns the classes `data.classes` lists (canonical spellings, in its order), or None for `auto`."""
  if data_cfg.classes == "auto":
    return None
  return tuple(canonical_label(n) for n in data_cfg.classes.split(","))


def class_names(cfg) -> tuple[str, ...]:
  """Returns the run's classes, in the order of the model's outputs.

  A trained run's config lists them (`data.classes`, resolved from the data at the start of
  training). `auto` on the embedded set means its default families; on any other data it
  must be resolved first (`resolve_classes`).
  """
  if cfg.data.classes == "auto" and cfg.data.path != "synth":
    raise ValueError(f"data.classes='auto' is not resolved for data.path={cfg.data.path!r}; read it from the "
                     f"data first (instruments_jax.data.sources.resolve_classes)")
  return configured_classes(cfg.data) or tuple(synth.DEFAULT_CLASSES)


def resolve_classes(data_cfg, path: str | None = None) -> tuple[str, ...]:
  """Returns the classes a run on `data_cfg` has: `data.classes`, or with `auto` those of the training split."""
  given = configured_classes(data_cfg)
  if given is not None:
    return given
  ds = open_split(data_cfg, "train", path)
  if ds is None:
    raise DataError(f"{path or data_cfg.path!r} has no training split to read the classes from")
  return ds.classes


@dataclasses.dataclass(frozen=True)
class Clip:
  name: str  # as the user knows it: the CSV's FileName or the path under the root
  tags: tuple[str, ...]  # its labels (canonical class names); one for a single-label clip, none for "no class"
  duration: float
  sample_rate: int
  channels: int
  path: str | None = None  # None for synth clips
  row: str = ""  # where a CSV named it ("Metadata_Train.csv row 5 ('a.wav')"); "" for class folders and synth


@dataclasses.dataclass
class Dataset:
  """Clips of one split, plus what was skipped and why."""

  name: str
  clips: list[Clip]
  skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  ignored: list[str] = dataclasses.field(default_factory=list)  # class folders: files not audio by extension
  synth_seed: int | None = None
  synth_split: str | None = None
  synth_classes: tuple[str, ...] = ()  # the families the embedded set's split was drawn from
  synth_mix: synth.Mix = synth.SOUNDFONT  # the engines and chain share the split was drawn from
  # validation_strategy=engine: clips held out of training, drawn from `synth_held_mix` instead
  synth_held: frozenset = frozenset()
  synth_held_mix: synth.Mix = synth.BENCHMARK
  classes: tuple[str, ...] = ()  # what label index c means: classes[c]
  multi_label: bool = False  # targets are multi-hot rows (a clip may have several labels, or none)
  # data.max_clip_seconds: > 0 when each clip's `duration` was cut to its first this many seconds (`capped`);
  # `load` then reads silence past that point, as it does past a clip's real end.
  max_seconds: float = 0.0

  def __len__(self):
    return len(self.clips)

  def __post_init__(self):
    self._index = {c: k for k, c in enumerate(self.classes)}

  @property
  def labels(self) -> np.ndarray:
    """Each clip's (first) label as an index into `classes` [N] (-1: a multi-label clip with none)."""
    return np.array([self._index[c.tags[0]] if c.tags else -1 for c in self.clips], np.int32)

  @property
  def targets(self) -> np.ndarray:
    """What the model learns: label indices [N] (int32), or multi-hot rows [N, C] (float32) when multi_label."""
    return self.target(range(len(self.clips)))

  def target(self, indices) -> np.ndarray:
    """The targets of clips `indices` (a sequence), as `targets`."""
    if not self.multi_label:
      return np.array([self._index[self.clips[int(i)].tags[0]] for i in indices], np.int32)
    out = np.zeros((len(indices), len(self.classes)), np.float32)
    for row, i in enumerate(indices):
      out[row, [self._index[t] for t in self.clips[int(i)].tags]] = 1.0
    return out

  def support(self) -> np.ndarray:
    """Clips per class [C] (a multi-label clip counts once for each of its labels)."""
    n = np.zeros(len(self.classes), np.int64)
    for c in self.clips:
      for t in c.tags:
        n[self._index[t]] += 1
    return n

  def synth_mix_of(self, i: int) -> synth.Mix:
    """The mix clip i is drawn from (embedded datasets only)."""
    return self.synth_held_mix if i in self.synth_held else self.synth_mix

  def synth_spec(self, i: int) -> synth.ClipSpec:
    """The synth description of clip i (embedded datasets only)."""
    return synth.clip_spec(self.synth_seed, self.synth_split, i, self.synth_classes, self.synth_mix_of(i))

  def synth_header(self, i: int) -> synth.ClipSpec:
    """`synth_spec` without its notes (synth.clip_header): what a clip is, not what it plays."""
    return synth.clip_header(self.synth_seed, self.synth_split, i, self.synth_classes, self.synth_mix_of(i))

  def load(self, i: int, start: float, duration: float, sample_rate: int) -> np.ndarray:
    """Returns mono float32 audio of clip i from `start`, exactly duration * sample_rate samples."""
    end = self.clips[i].duration
    if not self.max_seconds or start + duration <= end:
      return self._read(i, start, duration, sample_rate)
    out = np.zeros(int(round(duration * sample_rate)), np.float32)  # past the cap: silence
    keep = int(round(max(0.0, end - start) * sample_rate))
    if keep > 0:
      out[:keep] = self._read(i, start, keep / sample_rate, sample_rate)
    return out

  def _read(self, i: int, start: float, duration: float, sample_rate: int) -> np.ndarray:
    c = self.clips[i]
    n = int(round(duration * sample_rate))
    if c.path is None:
      spec = self.synth_spec(i)
      return audio.to_mono(synth.render(spec, start, duration), spec.sample_rate, sample_rate, n)
    try:
      return audio.load_window(c.path, start, duration, sample_rate)
    except DataError as e:  # a file can fail past its header (in a later window): name its CSV row too
      raise DataError(f"{c.row}: {e}" if c.row else str(e)) from None


def synth_dataset(seed: int, split: str, classes: tuple[str, ...] | None = None,
                  train_mix: synth.Mix = synth.BENCHMARK) -> Dataset:
  """Returns the embedded dataset's split of `classes` (default synth.DEFAULT_CLASSES); clips render when loaded.

  The train split is drawn from `train_mix`; test and unseen always from synth.BENCHMARK.
  """
  classes = tuple(classes or synth.DEFAULT_CLASSES)
  try:
    labels = synth.split_labels(seed, split, classes)
    mix = synth.check_mix(synth.split_mix(split, train_mix), classes)
  except ValueError as e:
    raise DataError(f"data.path='synth': {e}") from None
  clips = []
  for i, label in enumerate(labels):
    s = synth.clip_header(seed, split, i, classes)  # duration, rate and channels do not depend on the mix
    clips.append(Clip(synth.file_name(split, i), (label,), s.duration, s.sample_rate, s.channels))
  return Dataset(f"synth/{split}", clips, synth_seed=seed, synth_split=split, synth_classes=classes, synth_mix=mix,
                 classes=classes)


def open_dataset(path: str, split: str, *, synth_seed: int = 0, audio_column: str = "FileName",
                 label_column: str = "Class", skip_bad_files: bool = False, classes: tuple[str, ...] | None = None,
                 label_separator: str = "|", label_columns: tuple[str, ...] = (),
                 synth_mix: synth.Mix = synth.BENCHMARK) -> Dataset | None:
  """Opens one split ("train", "test" or synth's "unseen") of `synth` or a dataset directory; None if absent.

  `classes` (canonical names) fixes the label set and its order: a clip labelled outside it is
  a bad row. None reads the set from the split itself (data.classes=auto), ordered by
  `order_classes` (with `label_columns`: in the columns' order). A label cell may hold several
  labels joined by `label_separator`; `label_columns` reads one 0/1 column per class instead.
  Either makes the dataset multi-label when any clip has other than one label.

  A bad file or row raises DataError naming it, the row and the reason; with
  `skip_bad_files` it is left out and listed in the dataset's `skipped`. A CSV
  path escaping the data root is never opened, whichever the policy.
  """
  if path == "synth":
    return synth_dataset(synth_seed, split, classes, synth_mix)
  if not os.path.isdir(path):
    raise DataError(f"data path {path!r} is not a directory (nor 'synth')")
  ignored = []
  if any(os.path.exists(os.path.join(path, f)) for f in KAGGLE_CSVS.values()):
    csv_path = os.path.join(path, KAGGLE_CSVS[split])
    if not os.path.exists(csv_path):
      return None
    found, multi = _kaggle(path, split, csv_path, audio_column, label_column, classes, label_separator,
                           tuple(label_columns))
    name = os.path.basename(csv_path)
  else:
    base = os.path.join(path, split) if os.path.isdir(os.path.join(path, split)) else path
    if base == path and split != "train":
      return None
    found, ignored = _class_folders(path, base, classes)
    name, multi = os.path.relpath(base, os.path.dirname(path)), False
  if classes is None:
    tags = {t for _, target, _ in found if target is not None for t in target[1]}
    columns = [canonical_label(c) for c in label_columns]
    classes = tuple(columns) if label_columns else order_classes(tags)
  clips, skipped = _probe(name, found, skip_bad_files)
  return Dataset(name, clips, skipped, ignored, classes=tuple(classes), multi_label=multi)


def open_split(data_cfg, split: str, path: str | None = None) -> Dataset | None:
  """Opens `split` of `path` (default data_cfg.path) with the config's classes, columns, synth seed,
  bad-file policy and clip length (data.max_clip_seconds)."""
  columns = tuple(c.strip() for c in data_cfg.label_columns.split(",") if c.strip())
  ds = open_dataset(path or data_cfg.path, split, synth_seed=data_cfg.synth_seed, audio_column=data_cfg.audio_column,
                    label_column=data_cfg.label_column, skip_bad_files=data_cfg.skip_bad_files,
                    classes=configured_classes(data_cfg), label_separator=data_cfg.label_separator,
                    label_columns=columns, synth_mix=train_mix(data_cfg))
  return None if ds is None else capped(ds, data_cfg.max_clip_seconds)


def capped(ds: Dataset, seconds: float) -> Dataset:
  """Returns `ds` with every clip read up to its first `seconds` (0: whole clips, `ds` itself)."""
  if not seconds:
    return ds
  clips = [dataclasses.replace(c, duration=min(c.duration, float(seconds))) for c in ds.clips]
  return dataclasses.replace(ds, clips=clips, max_seconds=float(seconds))


def train_mix(data_cfg) -> synth.Mix:
  """The embedded train split's engines, chain share, voice spread, distortion share, guitar amplifier share and
  formant shift (data.synth_engines, data.synth_chain_prob, data.synth_voice_spread, data.synth_distortion_prob,
  data.synth_guitar_amp, data.synth_formant_shift)."""
  return synth.parse_mix(data_cfg.synth_engines, data_cfg.synth_chain_prob, data_cfg.synth_voice_spread,
                         data_cfg.synth_distortion_prob, data_cfg.synth_guitar_amp, data_cfg.synth_formant_shift)


def _inside(root: str, rel: str) -> str | None:
  """Returns root/rel resolved, or None when rel escapes root."""
  if os.path.isabs(rel):
    return None
  full = os.path.realpath(os.path.join(root, rel))
  return full if full.startswith(os.path.realpath(root) + os.sep) else None


def _kaggle(root, split, csv_path, audio_column, label_column, classes, separator, label_columns):
  """Returns ([(name, (path, tags) or None, where)], multi_label) of a Kaggle-layout CSV's rows."""
  audio_dirs = [os.path.join(root, d) for d in KAGGLE_AUDIO_DIRS[split]] + [root]
  with open(csv_path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    missing = {audio_column, *(label_columns or (label_column,))} - set(reader.fieldnames or ())
    if missing:
      raise DataError(f"{csv_path}: no column {', '.join(sorted(missing))} (found {reader.fieldnames})")
    rows = list(reader)
  if not rows:
    raise DataError(f"{csv_path}: the CSV has a header and no rows: no clips in its {split} split")
  if label_columns and classes is not None:
    named = {canonical_label(c) for c in label_columns}
    if named != set(classes):
      raise DataError(f"{csv_path}: data.label_columns name {', '.join(sorted(named))}, but the run's classes are "
                      f"{', '.join(classes)}")
  found, seen = [], {}
  for row_no, row in enumerate(rows, start=2):  # row 1 is the header
    name = (row[audio_column] or "").strip()
    where = f"{csv_path} row {row_no} ({name!r})"
    if label_columns:
      raw = ",".join(f"{c}={(row[c] or '').strip()}" for c in label_columns)
      tags, why = _column_tags(row, label_columns)
    else:
      raw = (row[label_column] or "").strip()
      tags, why = _cell_tags(raw, separator)
    outside = [t for t in tags if classes is not None and t not in classes]
    if why or outside:
      why = why or (f"label {outside[0]!r} is not one of the run's classes ({', '.join(classes)})"
                    if classes else "")
      found.append((name, None, f"{where}: {why}"))
      continue
    first = seen.setdefault(os.path.normpath(name), (row_no, raw))
    if first[0] != row_no:  # the first row keeps the file; a repeat is reported, never merged silently
      found.append((name, None, f"{where}: duplicate of row {first[0]} (label {first[1]!r}, here {raw!r})"))
      continue
    if _inside(root, name) is None:
      found.append((name, None, f"{where}: the path escapes the data root {root!r}; refused, never opened"))
      continue
    full = next((p for p in (_inside(d, name) for d in audio_dirs) if p and os.path.isfile(p)), None)
    if full is None:
      found.append((name, None, f"{where}: file not found under {', '.join(audio_dirs)}"))
      continue
    found.append((name, (full, tags), where))
  multi = bool(label_columns) or any(t is not None and len(t[1]) != 1 for _, t, _ in found)
  return found, multi


def _cell_tags(raw: str, separator: str) -> tuple[tuple[str, ...], str]:
  """Returns (labels, "") of a label cell (several joined by `separator`), or ((), why it is bad)."""
  parts = raw.split(separator) if separator else [raw]
  tags = tuple(dict.fromkeys(canonical_label(p) for p in parts))
  if None in tags:
    return (), f"empty label {raw!r}" + (f" (labels are joined by {separator!r})" if len(parts) > 1 else "")
  return tags, ""


def _column_tags(row: dict, columns) -> tuple[tuple[str, ...], str]:
  """Returns (labels, "") of a row's 0/1 class columns, or ((), why a cell is bad)."""
  tags = []
  for c in columns:
    cell = (row[c] or "").strip().lower()
    if cell in TRUE_CELLS:
      tags.append(canonical_label(c))
    elif cell not in FALSE_CELLS:
      return (), f"column {c!r} holds {row[c]!r}; a class column holds 1 or 0"
  return tuple(tags), ""


def _class_folders(root, base, classes):
  """Returns ([(name, (path, tags) or None, where)], [files ignored]) of the folder per class under `base`."""
  found, ignored, mac = [], [], 0
  for entry in sorted(os.listdir(base)):
    d = os.path.join(base, entry)
    if not os.path.isdir(d) or entry in ("train", "test"):
      continue
    if entry == MAC_METADATA_DIR:
      mac += 1
      continue
    label = canonical_label(entry)
    why = ""
    if classes is not None and label not in classes:
      why = (f"folder {d!r} is not one of the run's classes ({', '.join(classes)}); rename it or set "
             f"data.classes")
    for dirpath, dirnames, files in sorted(os.walk(d)):
      mac += dirnames.count(MAC_METADATA_DIR)
      dirnames[:] = [n for n in dirnames if n != MAC_METADATA_DIR]
      for fn in sorted(files):
        full = os.path.join(dirpath, fn)
        if fn.startswith("._"):  # a macOS resource fork beside the clip, not audio
          mac += 1
        elif fn.lower().endswith(AUDIO_EXTENSIONS):
          found.append((os.path.relpath(full, root), None if why else (full, (label,)), f"{full}: {why}" if why
                        else full))
        elif not fn.startswith("."):
          ignored.append(os.path.relpath(full, root))
  if mac:
    logging.warning("%s: ignored %d macOS metadata entr%s (%s/ folders, ._* files)", base, mac,
                    "y" if mac == 1 else "ies", MAC_METADATA_DIR)
  if not found:
    raise DataError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in class folders under {base!r}")
  if ignored:
    logging.warning("%s: ignored %d file(s) that are not audio by their extension (%s): %s", base, len(ignored),
                    ", ".join(AUDIO_EXTENSIONS), ", ".join(ignored[:10]) + (" ..." if len(ignored) > 10 else ""))
  return found, ignored


def _probe(name, found, skip_bad_files) -> tuple[list[Clip], list[tuple[str, str]]]:
  """Returns (clips, [(name, reason)] skipped), reading each file's header; stops at the first bad one unless
  skip_bad_files."""
  clips, skipped = [], []
  for rel, target, where in found:
    try:
      if target is None:
        raise DataError(where)
      full, tags = target
      try:
        duration, sr, ch = audio.check(full)
      except DataError as e:
        raise DataError(str(e) if where == full else f"{where}: {e}") from None
      clips.append(Clip(rel, tags, duration, sr, ch, full, "" if where == full else where))
    except DataError as e:
      if not skip_bad_files:
        raise DataError(f"{e}; run with --config.data.skip_bad_files=true to continue without it") from None
      skipped.append((rel, str(e)))
  if skipped:
    logging.warning("%s: skipped %d bad file(s):\n  %s", name, len(skipped),
                    "\n  ".join(f"{r}: {why}" for r, why in skipped))
    if not clips:
      raise DataError(f"{name}: all {len(skipped)} file(s) are bad (skip_bad_files left no clip); the first: "
                      f"{skipped[0][1]}")
  return clips, skipped


def decode_all(ds: Dataset, indices, workers: int = 1) -> list[tuple[int, str]]:
  """Decodes clips `indices` of a dataset of files in full (threads); returns (index, reason) of each that fails.

  Opening a file reads its header only; a file damaged further in fails only here.
  """
  from concurrent.futures import ThreadPoolExecutor

  def one(i):
    c = ds.clips[i]
    try:
      ds.load(i, 0.0, c.duration, c.sample_rate)
      return i, ""
    except DataError as e:
      return i, str(e)

  pool = ThreadPoolExecutor(max(1, workers))
  try:
    results = list(pool.map(one, [int(i) for i in indices]))
  except BaseException:  # a stop signal: drop the queued clips
    pool.shutdown(wait=False, cancel_futures=True)
    raise
  pool.shutdown()
  return [(i, why) for i, why in results if why]


def kfold_split(labels: np.ndarray, num_folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Returns (train, validation) indices: stratified k-fold, fold `fold` held out, seeded."""
  from sklearn.model_selection import StratifiedKFold

  folds = list(StratifiedKFold(num_folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))
  return folds[fold][0], folds[fold][1]


def train_validation(data_cfg, path: str | None = None) -> tuple[Dataset, np.ndarray, np.ndarray]:
  """Returns (train split, train indices, validation indices): the one place that decides a run's validation clips.

  `data.validation_strategy` holds out a k-fold fold (the recipe) or, on synth, one voice
  per class and engine, or a whole engine; `data.data_sample` then keeps a seeded fraction of each, as training does.
  """
  d = data_cfg
  ds = open_split(d, "train", path)
  if ds is None:
    raise DataError(f"{path or d.path!r} has no training split")
  check_classes(ds, d)
  if d.validation_strategy == "programs":
    train, val = program_split(ds)
  elif d.validation_strategy == "engine":
    ds, train, val = engine_split(ds, d)
  else:
    train, val = kfold_split(ds.labels, d.num_folds, d.validation_fold, d.fold_seed)
  return ds, subsample(train, ds.labels, d.data_sample, d.fold_seed), subsample(val, ds.labels, d.data_sample,
                                                                                d.fold_seed)


def check_classes(ds: Dataset, data_cfg) -> None:
  """Raises DataError unless the training split has at least 2 classes, each with at least num_folds clips."""
  where = f"{ds.name} ({data_cfg.path})"
  if len(ds.classes) < 2:
    raise DataError(f"{where}: found {len(ds.classes)} class{'es' if len(ds.classes) != 1 else ''} "
                    f"({', '.join(ds.classes) or 'none'}); a classifier needs at least 2")
  if data_cfg.validation_strategy == "kfold":
    few = [(c, int(n)) for c, n in zip(ds.classes, ds.support()) if n < data_cfg.num_folds]
    if few:
      raise DataError(f"{where}: class{'es' if len(few) > 1 else ''} "
                      f"{', '.join(f'{c} ({n})' for c, n in few)} {'have' if len(few) > 1 else 'has'} "
                      f"fewer than data.num_folds={data_cfg.num_folds} clips: every validation fold needs each class; "
                      f"add clips, lower data.num_folds, or leave the class out with data.classes")


def split(data_cfg, name: str, path: str | None = None) -> tuple[Dataset, np.ndarray]:
  """Returns (dataset, indices) of a split by name: "train" / "validation" as a run trained, or "test" / "unseen"."""
  if name in ("train", "validation"):
    ds, train, val = train_validation(data_cfg, path)
    return ds, train if name == "train" else val
  ds = open_split(data_cfg, name, path)
  if ds is None:
    raise DataError(f"{path or data_cfg.path!r} has no {name} split")
  return ds, np.arange(len(ds))


def without(ds: Dataset, indices) -> Dataset:
  """Returns `ds` without the clips at `indices` (its skipped list kept)."""
  drop = set(int(i) for i in indices)
  if not drop:
    return ds
  return dataclasses.replace(ds, clips=[c for i, c in enumerate(ds.clips) if i not in drop])


def program_split(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
  """Returns (train, validation) of the synth train split, validation = one held-out voice per class and engine.

  For choosing augmentation without looking at the `unseen` split: the last "seen" program
  of each class (harpsichord, overdrive guitar, fiddle, brush kit) and the last seen voice
  of each model engine never train.
  """
  from instruments_jax.data import engines

  if dataset.synth_split is None:
    raise DataError("validation_strategy=programs needs the embedded synth set (data.path=synth)")
  held = {(e, label): pool[-1] for e in engines.SAMPLED for label, pool in synth.PROGRAMS["seen"].items()
          if len(pool) > 1}
  for e in dataset.synth_mix.engines:
    if e not in engines.SAMPLED:
      held.update({(e, label): pool[-1] for label, pool in engines.VOICES[e]["seen"].items() if len(pool) > 1})
  specs = [dataset.synth_header(i) for i in range(len(dataset))]
  val = np.array([s.program == held.get((s.engine, s.label)) for s in specs])
  return np.flatnonzero(~val), np.flatnonzero(val)


def engine_split(dataset: Dataset, data_cfg) -> tuple[Dataset, np.ndarray, np.ndarray]:
  """Returns (dataset, train, validation) of the synth train split with one sound engine held out.

  The held-out clips are those that synth.BENCHMARK gives `data.validation_engine`, and
  they stay BENCHMARK clips (that engine, 3 in 4 through a chain), whatever the recipe's
  own mix: every candidate validates on the same clips. An engine the benchmark lacks (the sample
  libraries fluid and freepats) holds out the clips that the benchmark with it added would give
  it, drawn from that mix. Those in the k-fold fold
  `data.validation_fold` validate, or with -1 all of them (five times the clips: a score that moves
  less by chance, RESULTS.md, "twelfth round"); none trains. The other clips train on the recipe's
  mix without that engine (a clip keeps its engine when the mix still allows it). The
  model never hears the engine while training, so its validation score says how a recipe
  carries over to a way of making sound it has not met: recipes are chosen on it without
  looking at the `unseen` split.
  """
  engine = data_cfg.validation_engine
  if dataset.synth_split is None:
    raise DataError("validation_strategy=engine needs the embedded synth set (data.path=synth)")
  rest = dataclasses.replace(dataset.synth_mix, engines=tuple(e for e in dataset.synth_mix.engines if e != engine))
  try:
    synth.check_mix(rest, dataset.synth_classes)
  except ValueError as e:
    raise DataError(f"data.validation_engine={engine!r} held out of data.synth_engines="
                    f"{','.join(dataset.synth_mix.engines)!r}: {e}") from None
  held_mix = synth.BENCHMARK
  if engine not in held_mix.engines:
    held_mix = dataclasses.replace(held_mix, engines=held_mix.engines + (engine,))
    try:
      synth.check_mix(held_mix, dataset.synth_classes)
    except ValueError as e:
      raise DataError(f"data.validation_engine={engine!r}: {e}") from None
  bench = dataclasses.replace(dataset, synth_mix=held_mix)
  held = np.array([bench.synth_header(i).engine == engine for i in range(len(dataset))])
  val = held.copy()
  if data_cfg.validation_fold >= 0:
    _, fold = kfold_split(dataset.labels, data_cfg.num_folds, data_cfg.validation_fold, data_cfg.fold_seed)
    val &= np.isin(np.arange(len(dataset)), fold)
  missing = [c for k, c in enumerate(dataset.classes) if not np.any(val & (dataset.labels == k))]
  if missing:
    raise DataError(f"data.validation_engine={engine!r} renders no validation clip of {', '.join(missing)}: those "
                    f"classes would go unvalidated; hold out another engine or use kfold")
  ds = dataclasses.replace(dataset, synth_mix=rest, synth_held=frozenset(np.flatnonzero(held).tolist()),
                           synth_held_mix=held_mix)
  return ds, np.flatnonzero(~held), np.flatnonzero(val)


def subsample(indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Returns a seeded, per-class `fraction` of indices (the recipe's data_sample), at least one per class."""
  if fraction >= 1.0:
    return indices
  rng = np.random.default_rng(seed)
  keep = []
  for c in np.unique(labels[indices]):
    members = indices[labels[indices] == c]
    keep.extend(rng.choice(members, max(1, int(round(len(members) * fraction))), replace=False))
  return np.sort(np.asarray(keep))
