"""A trained run as pure JAX functions.

    clf = instruments_jax.load_classifier("runs/quick")
    probs = jax.jit(clf.apply)(clf.params, waveforms)        # [B, samples] at clf.sample_rate
    probs = jax.jit(clf.apply_log_mel)(clf.params, log_mels)  # [B, mel_bins, frames]

The model computes in `prediction.mixed_precision` (bfloat16 when true, the
weights stay float32); probabilities follow the run's `train.loss`.
"""

from __future__ import annotations

import dataclasses

import instruments_jax  # noqa: F401  (selects the JAX backend)
import jax
import jax.numpy as jnp
import ml_collections

from instruments_jax import checkpoint, configs, losses, rundir
from instruments_jax.data import features, sources


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A trained model as pure functions of (params, input); works under jit, vmap and grad."""

  config: ml_collections.ConfigDict
  model: object  # the keras.Model, called statelessly
  params: dict  # {"params": trainable values, "model_state": BatchNorm statistics etc.}
  step: int  # the training step of the checkpoint

  @property
  def classes(self) -> tuple[str, ...]:
    """The class of each output column."""
    return sources.class_names(self.config)

  @property
  def sample_rate(self) -> int:
    return int(self.config.audio.sample_rate)

  def apply_log_mel(self, params, log_mel):
    """Returns class probabilities [..., C] for log-mel input [..., mel_bins, frames]."""
    single = log_mel.ndim == 2
    x = log_mel[None] if single else log_mel
    logits, _ = self.model.stateless_call(params["params"], params["model_state"], x[..., None], training=False)
    probs = losses.probabilities(logits.astype(jnp.float32), self.config.train.loss, xp=jnp)
    return probs[0] if single else probs

  def apply(self, params, waveform):
    """Returns class probabilities [..., C] for mono waveforms [..., samples] at `sample_rate`."""
    return self.apply_log_mel(params, features.log_mel(waveform, self.config.audio, xp=jnp))

  def chunk_predictor(self):
    """Returns a jitted `x -> probabilities` for pipeline batches [B, mel_bins, frames, 1] (metrics.predict_clips)."""
    return jax.jit(lambda x: self.apply_log_mel(self.params, x[..., 0]))


def load_classifier(workdir: str) -> Classifier:
  """Returns the classifier of the newest checkpoint a training run saved in `workdir`."""
  from instruments_jax.model import build_model

  cfg = rundir.load_config(workdir)
  configs.validate(cfg, check_paths=False)
  model = build_model(cfg, mixed_precision=cfg.prediction.mixed_precision, load_weights=False)
  shapes = lambda vs: [(tuple(v.shape), str(v.dtype)) for v in vs]
  step, saved = checkpoint.restore_weights(workdir, {"params": shapes(model.trainable_variables),
                                                     "model_state": shapes(model.non_trainable_variables)})
  params = jax.tree.map(jnp.asarray, saved)
  return Classifier(cfg, model, params, step)
