"""TensorBoard event files of a run, read back with TensorBoard's own event reader; the training-data figure."""

import numpy as np
import pytest


def _read(workdir):
  from tensorboard.backend.event_processing import event_accumulator as ea

  acc = ea.EventAccumulator(str(workdir / "tensorboard"),
                            size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.AUDIO: 0, ea.TENSORS: 0})
  acc.Reload()
  return acc


@pytest.mark.slow
def test_a_smoke_run_logs_scalars_images_and_audio(smoke_run):
  acc = _read(smoke_run)
  tags = acc.Tags()
  assert [e.step for e in acc.Scalars("train/batch_loss")] == list(range(1, 11))  # every step of 10
  for tag in ("train/lr", "train/loss", "train/samples_per_s"):
    assert [e.step for e in acc.Scalars(tag)] == [2, 4, 6, 8, 10]  # train.log_every_steps=2
  for split, step in (("validation", 10), ("test", 10)):
    for name in ("loss", "accuracy", "macro_f1", "roc_auc", "map"):
      assert [e.step for e in acc.Scalars(f"{split}/{name}")] == [step], (split, name)
    for cls in ("guitar", "drum", "violin", "piano"):
      for score in ("precision", "recall", "f1", "ap"):
        assert f"{split}/{cls}/{score}" in tags["scalars"]
  lr = [e.value for e in acc.Scalars("train/lr")]
  assert lr == sorted(lr, reverse=True)  # the cosine schedule, decaying
  assert set(tags["images"]) == {"train_data", "chart", "validation/confusion_matrix", "validation/predictions"}
  shape = acc.Images("train_data")[0]
  assert shape.width > 800 and shape.height > 300
  assert len(tags["audio"]) == 8  # logging.number_of_audios of the 11 validation clips
  clip = acc.Audio("validation/worst_0")[0]
  assert clip.sample_rate == 44100 and clip.length_frames == 33075  # the first 0.75 s inference chunk
  assert (smoke_run / "train_data.png").stat().st_size > 50_000


def test_a_disabled_board_writes_nothing(tmp_path):
  from instruments_jax import board

  b = board.Board(None)  # what every process but 0 gets
  b.train(3, [1.0, 2.0], 0.1, 5.0)
  b.metrics("validation", 3, {"loss": 1.0})
  b.audio("a", np.zeros(10), 8000, 3)
  b.close()
  assert b.writer is None and list(tmp_path.iterdir()) == []
