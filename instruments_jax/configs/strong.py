"""`quick` plus augmentation, for recordings unlike the training data (other instruments, rooms, mics).

Trained and tuned only on the embedded train split; judged on the test split and on
synth's `unseen` split, whose GM programs and drum kits never occur in training.
"""

from instruments_jax.configs import quick


def get_config():
  c = quick.get_config()
  c.name = "strong"
  c.model.dropout = 0.0  # quick's dropout was chosen without this augmentation; strong's numbers are without it
  a = c.augmentation
  a.mix_audio = "mixup"  # the recipe's mix_audio, here on the log-mel batch
  a.mix_concentration = 0.4
  a.mix_probability = 0.5
  a.gain_db = 6.0
  a.noise_prob = 0.3
  a.eq_prob = 0.5
  a.reverb_prob = 0.3
  a.pitch_prob = 0.3
  a.freq_masks = 2
  a.time_masks = 2
  return c
