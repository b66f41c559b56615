"""`quick` on musicnn's MagnaTagATune weights: a network trained on real recordings, fine-tuned at its back-end.

musicnn (instruments_jax/musicnn.py) hears 16 kHz log-mels of 96 bands over 0-8000 Hz, from
512-point frames with a hop of 256, in 3 s windows, which is how it was trained. Its front- and
mid-end stay frozen (`model.freeze=features`). The dense layer of its back-end trains, with the
classifier. `--config.model.head_init=tags` starts each class named like a MagnaTagATune tag
(guitar, drums, violin, piano) as that tag's unit. With no step at all, that alone scores 0.65 on
the physical hold-out (RESULTS.md).

The weights come from the `musicnn` wheel on PyPI, fetched once with pip and read without
TensorFlow. `--config.model.weights=/path/to/MTT_musicnn` uses a local copy instead. On the
held-out engines it scores 0.861 on the FluidR3 library, against `quick`'s 0.803, 0.876 on FreePats
(0.884) and 0.785 on our physical engine (0.883), four-seed means (RESULTS.md, "eighteenth round").
It is here for recordings unlike ours and for your own labels.
"""

from instruments_jax.configs import quick
from instruments_jax.configs.schema import MUSICNN_AUDIO


def get_config():
  c = quick.get_config()
  c.name = "musicnn"
  c.model.backbone = "musicnn"
  c.model.weights = "musicnn"
  c.model.freeze = "features"
  for path, value in MUSICNN_AUDIO.items():  # the front end the weights were trained on, as validate wants it
    c.audio[path.split(".")[1]] = value
  c.audio.training_chunk_seconds = 3.0
  c.prediction.inference_chunk_seconds = 3.0
  return c
