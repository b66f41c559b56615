import numpy as np
import pytest

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


@pytest.mark.slow
def test_same_seed_same_batches_even_with_worker_processes():
  ds = sources.synth_dataset(0, "train")
  idx = np.arange(12)
  a = list(pipeline.train_batches(ds, idx, _cfg(workers=2), seed=5, epochs=2))
  b = list(pipeline.train_batches(ds, idx, _cfg(workers=0), seed=5, epochs=2))
  c = list(pipeline.train_batches(ds, idx, _cfg(workers=0), seed=6, epochs=2))
  assert all(np.array_equal(x["x"], y["x"]) and np.array_equal(x["y"], y["y"]) for x, y in zip(a, b))
  assert not all(np.array_equal(x["x"], y["x"]) for x, y in zip(a, c))


def _clips_of(*durations):
  """A dataset built by hand: eval_plan reads only the durations."""
  clips = [sources.Clip(f"clip{k}.wav", 0, d, 44100, 1, f"/nowhere/clip{k}.wav") for k, d in enumerate(durations)]
  return sources.Dataset("by hand", clips)


def _pred_cfg(chunk=2.0, cap=7.0):
  pred = _cfg().prediction
  pred.inference_chunk_seconds = chunk
  pred.max_inference_chunk_seconds = cap
  return pred


def test_eval_covers_each_clip_in_fixed_chunks_up_to_the_cap():
  ds = _clips_of(0.5, 2.0, 2.1, 6.0, 9.0, 7.0)
  plan = pipeline.eval_plan(ds, np.arange(6), _pred_cfg(2.0, 7.0))
  # 2 s chunks covering min(duration, 7 s); a clip shorter than a chunk still gets one (padded)
  expected = {0: [0.0],  # 0.5 s
              1: [0.0],  # 2.0 s: exactly one chunk
              2: [0.0, 2.0],  # 2.1 s: a second chunk for the last 0.1 s
              3: [0.0, 2.0, 4.0],  # 6.0 s
              4: [0.0, 2.0, 4.0, 6.0],  # 9.0 s, capped at 7 s: the chunk at 6 s holds 6..7 s
              5: [0.0, 2.0, 4.0, 6.0]}  # 7.0 s
  for pos, starts in expected.items():
    assert [s for p, _, s, _ in plan if p == pos] == starts, pos
  assert [(p, i) for p, i, _, _ in plan] == [(0, 0), (1, 1), (2, 2), (2, 2), (3, 3), (3, 3), (3, 3),
                                              (4, 4), (4, 4), (4, 4), (4, 4), (5, 5), (5, 5), (5, 5), (5, 5)]
  assert {sec for *_, sec in plan} == {2.0}  # without buckets every chunk is a full chunk


def test_eval_plan_names_positions_and_clip_indices_apart():
  ds = _clips_of(0.5, 2.0, 4.5)
  plan = pipeline.eval_plan(ds, np.array([2, 0]), _pred_cfg(2.0, 7.0))
  assert plan == [(0, 2, 0.0, 2.0), (0, 2, 2.0, 2.0), (0, 2, 4.0, 2.0), (1, 0, 0.0, 2.0)]


def test_eval_chunks_shrink_to_the_smallest_length_bucket_holding_what_is_left():
  ds = _clips_of(0.5, 2.0, 2.1, 6.0, 9.0, 1.2, 3.0)
  plan = pipeline.eval_plan(ds, np.arange(7), _pred_cfg(2.0, 7.0), buckets=(1.0, 0.5))
  chunks = {pos: [(s, sec) for p, _, s, sec in plan if p == pos] for pos in range(7)}
  assert chunks == {
      0: [(0.0, 0.5)],  # 0.5 s fits the 0.5 s bucket
      1: [(0.0, 2.0)],  # 2.0 s: a full chunk
      2: [(0.0, 2.0), (2.0, 0.5)],  # 0.1 s left: the 0.5 s bucket
      3: [(0.0, 2.0), (2.0, 2.0), (4.0, 2.0)],  # 6, 4 and 2 s left: full chunks
      4: [(0.0, 2.0), (2.0, 2.0), (4.0, 2.0), (6.0, 1.0)],  # capped at 7 s: 1 s left at 6 s
      5: [(0.0, 2.0)],  # 1.2 s: longer than every bucket, a full chunk
      6: [(0.0, 2.0), (2.0, 1.0)],  # 1.0 s left: exactly the 1 s bucket
  }
