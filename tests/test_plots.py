"""plots: the recipe's training chart and the predictions figure."""

import json

import numpy as np

from instruments_jax import plots
from instruments_jax.configs import get_config
from instruments_jax.data import sources


def test_chart_draws_the_four_panels_that_have_data(tmp_path):
  path = tmp_path / "metrics.jsonl"
  rows = [{"step": 2, "samples": 8, "lr": 1e-3, "train_loss": 0.7, "batch_losses": [0.8, 0.6]},
          {"step": 4, "samples": 16, "lr": 5e-4, "train_loss": 0.5, "batch_losses": [0.55, 0.45]}]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert plots.plot_chart(str(path), str(tmp_path / "a.png")) == ["learning rate", "train batch loss"]
  with open(path, "a") as f:
    f.write(json.dumps({"step": 4, "samples": 16, "split": "validation", "loss": 0.4, "roc_auc": 0.8}) + "\n")
  drawn = plots.plot_chart(str(path), str(tmp_path / "b.png"))
  assert drawn == ["learning rate", "train batch loss", "validation loss", "validation ROC-AUC"]
  assert (tmp_path / "b.png").stat().st_size > 20_000


def test_predictions_figure_shows_the_highest_loss_clips_first(tmp_path):
  cfg = get_config("smoke")
  cfg.logging.number_of_audios = 2
  ds = sources.synth_dataset(0, "test")
  idx = np.array([0, 1, 2, 3])
  probs = np.full((4, 4), 0.25)
  shown = plots.plot_predictions(ds, idx, probs, np.array([0.1, 0.9, 0.5, 0.2]), cfg, "t",
                                 str(tmp_path / "p.png"))
  assert shown == [ds.clips[1].name, ds.clips[2].name]
