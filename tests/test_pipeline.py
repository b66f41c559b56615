import numpy as np

from instruments_jax.configs import get_config
from instruments_jax.data import pipeline, sources


def _cfg(workers=0):
  cfg = get_config("smoke")
  cfg.data.num_workers = workers
  cfg.train.batch_size = 4
  return cfg


def _labels_per_epoch(batches, steps):
  ys = [b["y"].tolist() for b in batches]
  return [sum(ys[e * steps:(e + 1) * steps], []) for e in range(len(ys) // steps)]


def test_drop_last_batches_and_a_new_shuffle_each_epoch():
  ds = sources.synth_dataset(0, "train")
  idx = np.arange(10)  # 10 clips, batch 4: two full batches per epoch, two clips dropped
  batches = list(pipeline.train_batches(ds, idx, _cfg(), seed=3, epochs=3))
  assert len(batches) == 6
  assert all(b["x"].shape == (4, 32, pipeline.features.num_frames(33075, 512), 1) for b in batches)
  epochs = _labels_per_epoch(batches, 2)
  assert len({tuple(e) for e in epochs}) > 1


def test_same_seed_same_batches_even_with_worker_processes():
  ds = sources.synth_dataset(0, "train")
  idx = np.arange(12)
  a = list(pipeline.train_batches(ds, idx, _cfg(workers=2), seed=5, epochs=2))
  b = list(pipeline.train_batches(ds, idx, _cfg(workers=0), seed=5, epochs=2))
  c = list(pipeline.train_batches(ds, idx, _cfg(workers=0), seed=6, epochs=2))
  assert all(np.array_equal(x["x"], y["x"]) and np.array_equal(x["y"], y["y"]) for x, y in zip(a, b))
  assert not all(np.array_equal(x["x"], y["x"]) for x, y in zip(a, c))


def test_eval_covers_each_clip_in_fixed_chunks_up_to_the_cap():
  ds = sources.synth_dataset(0, "test")
  cfg = _cfg()
  cfg.prediction.inference_chunk_seconds = 2.0
  cfg.prediction.max_inference_chunk_seconds = 7.0
  plan = pipeline.eval_plan(ds, np.arange(6), cfg.prediction)
  for pos in range(6):
    starts = [s for p, _, s, _ in plan if p == pos]
    covered = min(ds.clips[pos].duration, 7.0)
    assert starts == [2.0 * k for k in range(int(np.ceil(covered / 2.0 - 1e-6)))]
