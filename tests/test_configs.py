import json
import subprocess
import sys

import pytest

from instruments_jax.configs import FIELDS, NAMES, ConfigError, describe, get_config, validate

# The seed's configuration table (../shared/seed/reference.md), as config paths.
SEED = {
    "model.backbone": "resnet50", "model.weights": "imagenet", "model.pool": "avg", "model.dropout": 0.0,
    "audio.sample_rate": 44100, "audio.stft_window_size": 2048, "audio.hop_size": 512, "audio.mel_bins": 128,
    "audio.fmin": 50.0, "audio.fmax": 16000.0, "audio.training_chunk_seconds": 60.0,
    "augmentation.mix_audio": "disabled",
    "data.audio_column": "FileName", "data.label_column": "Class", "data.validation_strategy": "kfold",
    "data.num_folds": 5, "data.validation_fold": 4,
    "train.batch_size": 8, "train.drop_last_batch": True, "train.epochs": 5, "train.evaluation_epochs": 1,
    "train.optimizer": "adamw", "train.learning_rate": 0.001, "train.weight_decay": 0.0, "train.schedule": "cosine",
    "train.warmup_epochs": 0.0, "train.gradient_clip": 0.0, "train.grad_accumulation": 1, "train.loss": "bce",
    "train.mixed_precision": True,
    "prediction.inference_chunk_seconds": 60.0, "prediction.max_inference_chunk_seconds": 600.0,
}


def _get(d, path):
  for k in path.split("."):
    d = d[k]
  return d


def test_baseline_is_the_recipe_table():
  cfg = get_config("baseline").to_dict()
  for path, value in SEED.items():
    assert _get(cfg, path) == value, path


@pytest.mark.slow
def test_print_config_shows_every_recipe_setting():
  out = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=baseline", "--print_config"],
                       check=True, capture_output=True, text=True).stdout
  cfg = json.loads(out)
  for path, value in SEED.items():
    assert _get(cfg, path) == value, path


@pytest.mark.slow
def test_print_config_applies_overrides():
  out = subprocess.run([sys.executable, "-m", "instruments_jax.train", "--config=baseline", "--print_config",
                        "--config.model.weights=none", "--config.train.epochs=2"],
                       check=True, capture_output=True, text=True).stdout
  cfg = json.loads(out)
  assert cfg["model"]["weights"] == "none" and cfg["train"]["epochs"] == 2


def test_quick_and_smoke_need_no_network():
  for name in ("quick", "smoke"):
    assert get_config(name).model.weights == "none"


# --- schema: one registry of fields for validate() and describe() ---


def _paths(d, prefix=""):
  """Returns the dotted paths of every leaf of a nested dict."""
  out = []
  for k, v in d.items():
    out += _paths(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
  return out


def test_registry_holds_exactly_the_baseline_fields():
  paths = _paths(get_config("baseline").to_dict())
  assert sorted(FIELDS) == sorted(paths)


@pytest.mark.parametrize("name", NAMES)
def test_every_named_config_validates(name):
  validate(get_config(name), device_count=1)


@pytest.mark.slow
def test_schema_imports_neither_jax_nor_keras():
  code = ("import sys, instruments_jax.configs as c; c.validate(c.get_config('baseline'));"
          "print(sorted(m for m in ('jax', 'keras', 'numpy', 'instruments_jax.data') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
  assert out.strip() == "[]"


def _set(cfg, path, value):
  *parents, leaf = path.split(".")
  for k in parents:
    cfg = cfg.setdefault(k, {})
  cfg[leaf] = value


# (case, overrides as {path: value}, the field path the message must name, the value shown or a word of the rule)
BAD = [
    ("unknown enum", {"train.loss": "bec"}, "train.loss", "choose one of bce, softmax"),
    ("non-positive size", {"train.batch_size": 0}, "train.batch_size", "> 0"),
    ("too few folds", {"data.num_folds": 1}, "data.num_folds", ">= 2"),
    ("fmax above Nyquist", {"audio.fmax": 30000.0}, "audio.fmax", "Nyquist"),
    ("fold out of range", {"data.validation_fold": 5}, "data.validation_fold", "0..4"),
    ("unknown field", {"train.bach_size": 8}, "train.bach_size", "did you mean train.batch_size"),
    ("unknown section", {"optim.lr": 0.1}, "optim", "unknown section"),
    ("wrong type: str for int", {"train.epochs": "5"}, "train.epochs", "must be int"),
    ("wrong type: bool for int", {"audio.mel_bins": True}, "audio.mel_bins", "got bool"),
    ("probability out of [0,1]", {"augmentation.noise_prob": 1.5}, "augmentation.noise_prob", "[0, 1]"),
    ("threshold out of [0,1]", {"prediction.probability_threshold": -0.1}, "prediction.probability_threshold",
     "[0, 1]"),
    ("negative learning rate", {"train.learning_rate": -1e-3}, "train.learning_rate", ">= 0"),
    ("dropout of 1", {"model.dropout": 1.0}, "model.dropout", "[0, 1)"),
    ("hop longer than the window", {"audio.hop_size": 4096}, "audio.hop_size", "audio.stft_window_size"),
    ("fmin not below fmax", {"audio.fmin": 16000.0}, "audio.fmin", "< audio.fmax"),
    ("negative fmin", {"audio.fmin": -1.0}, "audio.fmin", ">= 0"),
    ("on-device log-mel with SpecAugment", {"audio.features_on_device": True, "augmentation.time_masks": 2},
     "audio.features_on_device", "SpecAugment"),
    ("missing weights file", {"model.weights": "/no/such/weights.h5"}, "model.weights", "no such file"),
    ("data path that is not a directory", {"data.path": "/no/such/dataset"}, "data.path", "not a directory"),
    ("data_sample of 0", {"data.data_sample": 0.0}, "data.data_sample", "(0, 1]"),
    ("max chunk below the chunk", {"prediction.max_inference_chunk_seconds": 30.0},
     "prediction.max_inference_chunk_seconds", ">= prediction.inference_chunk_seconds"),
    ("warm-up longer than training", {"train.warmup_epochs": 6.0}, "train.warmup_epochs", "<= train.epochs"),
    ("noise range reversed", {"augmentation.noise_snr_db": (40.0, 10.0)}, "augmentation.noise_snr_db", "low <= high"),
    ("length bucket of 0", {"data.length_buckets": (0.0, 5.0)}, "data.length_buckets", "> 0"),
    ("no accumulation", {"train.grad_accumulation": 0}, "train.grad_accumulation", ">= 1"),
    ("no clips in the figure", {"logging.number_of_audios": 0}, "logging.number_of_audios", ">= 1"),
    ("seed below -1", {"seed": -2}, "seed", ">= -1"),
    ("ImageNet weights for cnn8", {"model.backbone": "cnn8"}, "model.weights", "only model.backbone=resnet50"),
    ("a width for resnet50", {"model.width": 2.0}, "model.width", "only model.backbone=cnn8"),
    ("musicnn's checkpoint on resnet50", {"model.weights": "musicnn"}, "model.weights", "set model.backbone=musicnn"),
    ("cnn8 frozen to its features", {"model.backbone": "cnn8", "model.weights": "none", "model.freeze": "features"},
     "model.freeze", "only model.backbone=musicnn"),
    ("tag head without musicnn", {"model.head_init": "tags"}, "model.head_init", "set model.backbone=musicnn"),
    ("musicnn on 128 mel bins", {"model.backbone": "musicnn", "model.weights": "none"}, "model.backbone",
     "takes 96 mel bins"),
    ("musicnn's checkpoint on the recipe's 44.1 kHz front end",
     {"model.backbone": "musicnn", "model.weights": "musicnn", "audio.mel_bins": 96}, "model.backbone",
     "audio.sample_rate=44100 (wants 16000)"),
    ("cnn8+musicnn pooled like PANNs", {"model.backbone": "cnn8+musicnn", "model.weights": "none",
                                        "audio.mel_bins": 96, "model.pool": "panns"}, "model.pool",
     "pool cnn8 with avg or max"),
    ("tag head on cnn8+musicnn", {"model.backbone": "cnn8+musicnn", "model.head_init": "tags", "model.weights": "none",
                                  "audio.mel_bins": 96},
     "model.head_init", "read its 200 features alone"),
    ("cnn8+musicnn's checkpoint on the recipe's front end",
     {"model.backbone": "cnn8+musicnn", "model.weights": "musicnn", "audio.mel_bins": 96}, "model.backbone",
     "audio.sample_rate=44100 (wants 16000)"),
    ("branch dropout without a branch", {"model.branch_dropout": 0.5}, "model.branch_dropout",
     "only model.backbone=cnn8+musicnn"),
    ("width out of range", {"model.width": 8.0}, "model.width", "[0.25, 4]"),
    ("clips read to a negative length", {"data.max_clip_seconds": -1.0}, "data.max_clip_seconds", ">= 0"),
]


@pytest.mark.parametrize("case,overrides,path,hint", BAD, ids=[b[0] for b in BAD])
def test_validate_names_the_wrong_field(case, overrides, path, hint):
  cfg = get_config("baseline").to_dict()
  for p, v in overrides.items():
    _set(cfg, p, v)
  with pytest.raises(ConfigError) as e:
    validate(cfg, device_count=1)
  message = str(e.value)
  assert path in message and hint in message, message
  assert len(e.value.problems) == 1, message  # one wrong value, one line


def test_batch_must_divide_over_the_devices():
  cfg = get_config("baseline")
  cfg.train.batch_size = 6
  validate(cfg)  # no device count given: not checked
  validate(cfg, device_count=2)
  with pytest.raises(ConfigError, match="train.batch_size=6 does not divide over 4 devices; choose a multiple of 4"):
    validate(cfg, device_count=4)


def test_missing_field_and_missing_section():
  cfg = get_config("baseline").to_dict()
  del cfg["train"]["loss"], cfg["logging"]
  with pytest.raises(ConfigError) as e:
    validate(cfg)
  assert e.value.problems == ["train.loss: missing (str, one of bce, softmax)", "logging: missing section"]


def test_programs_validation_needs_synth(tmp_path):
  cfg = get_config("baseline")
  cfg.data.validation_strategy = "programs"
  validate(cfg)
  cfg.data.path = str(tmp_path)
  with pytest.raises(ConfigError, match="data.validation_strategy='programs'.*needs data.path='synth'"):
    validate(cfg)


def test_existing_weights_file_and_data_folder_pass(tmp_path):
  cfg = get_config("baseline")
  (tmp_path / "w.h5").write_bytes(b"")
  cfg.model.weights, cfg.data.path, cfg.data.cache_dir = str(tmp_path / "w.h5"), str(tmp_path), str(tmp_path / "c")
  validate(cfg)


def test_an_int_is_a_float_and_json_lists_are_tuples():
  cfg = get_config("baseline").to_dict()
  cfg["audio"]["fmax"] = 16000  # e.g. --config.audio.fmax=16000 in a dict-based caller
  cfg["augmentation"]["noise_snr_db"] = [10.0, 40]  # config.json turns tuples into lists
  validate(cfg)


def test_every_problem_is_listed_at_once():
  cfg = get_config("baseline")
  cfg.train.loss = "bec"
  cfg.audio.mel_bins = 0
  cfg.audio.fmax = 30000.0
  cfg.data.validation_fold = 7
  cfg.model.pool = "mean"
  with pytest.raises(ConfigError) as e:
    validate(cfg, device_count=3)
  lines = str(e.value).splitlines()
  assert lines[0] == "6 config problems:"
  for text in ("train.loss='bec': choose one of bce, softmax", "audio.mel_bins=0: must be > 0",
               "audio.fmax=30000.0", "data.validation_fold=7", "model.pool='mean'", "over 3 devices"):
    assert sum(text in l for l in lines[1:]) == 1, (text, lines)


def test_describe_has_one_line_per_field_with_its_meaning():
  cfg = get_config("quick")
  lines = describe(cfg).splitlines()
  assert len(lines) == len(FIELDS) + 1  # a header, then the fields
  for line, (path, field) in zip(lines[1:], FIELDS.items()):
    assert line.split()[:2] == [path, field.type.__name__] and field.doc in line, line
  assert "'none'" in next(l for l in lines if l.startswith("model.weights "))  # the value in this cfg
  assert "Nyquist" in next(l for l in lines if l.startswith("audio.fmax "))  # cross-field rules are documented
