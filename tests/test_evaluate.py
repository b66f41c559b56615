"""`python -m instruments_jax.evaluate`: scores, per-class table, confusion matrix and the predictions figure."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import instruments_jax
from instruments_jax.data import synth

pytestmark = pytest.mark.slow  # the smoke_run fixture trains


def test_evaluate_on_kaggle_test_split_with_the_typo(smoke_run, kaggle_dir, tmp_path):
  tmp_path = tmp_path / "made" / "by evaluate"  # --out need not exist
  p = subprocess.run([sys.executable, "-m", "instruments_jax.evaluate", f"--workdir={smoke_run}",
                      f"--data={kaggle_dir}", "--split=test", f"--out={tmp_path}"],
                     capture_output=True, text=True, check=True)
  assert re.search(r"accuracy \d\.\d{4}  macro F1 \d\.\d{4}  ROC-AUC", p.stdout)
  m = json.load(open(tmp_path / "eval_test.json"))
  assert m["clips"] == 12
  truth = [synth.split_labels(0, "test")[i] for i in range(12)]
  assert {k: v["support"] for k, v in m["per_class"].items()} == {c: truth.count(c) for c in synth.DEFAULT_CLASSES}
  cm = np.array(m["confusion_matrix"]["rows_true_cols_predicted"])
  assert cm.sum() == 12 and np.trace(cm) / 12 == m["accuracy"]
  for fig in ("confusion_matrix_test.png", "test_predictions.png"):
    assert (tmp_path / fig).stat().st_size > 10_000
  assert len(m["predictions_figure"]) == 8  # logging.number_of_audios in smoke


def test_validation_is_the_split_the_run_validated_on(smoke_run, tmp_path):
  from instruments_jax.evaluate import evaluate_run

  m = evaluate_run(str(smoke_run), split="validation", out_dir=str(tmp_path))
  logged = [json.loads(l) for l in open(smoke_run / "metrics.jsonl") if '"split": "validation"' in l][-1]
  assert m["clips"] == logged["clips"]  # data.data_sample applies to both
  assert m["accuracy"] == pytest.approx(logged["accuracy"]) and m["loss"] == pytest.approx(logged["loss"], abs=1e-4)


def test_number_of_audios_sets_the_clips_in_the_predictions_figure(smoke_run, kaggle_dir, tmp_path):
  from instruments_jax.evaluate import evaluate_run

  run = tmp_path / "run"
  shutil.copytree(smoke_run, run)
  cfg = json.loads((run / "config.json").read_text())
  cfg["logging"]["number_of_audios"] = 3
  (run / "config.json").write_text(json.dumps(cfg))
  m = evaluate_run(str(run), data=str(kaggle_dir), split="test")
  assert len(m["predictions_figure"]) == 3 and len(set(m["predictions_figure"])) == 3
  assert all(name.startswith("synth_test_") for name in m["predictions_figure"])
