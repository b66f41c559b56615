r"""Checks instruments_jax.musicnn against musicnn's own TensorFlow graph (run once, by hand; needs TensorFlow).

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras librosa
    pip download --no-deps musicnn==0.1.0 -d /tmp/mn && unzip -q /tmp/mn/musicnn-*.whl -d /tmp/mn/x
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python experiments/musicnn_parity.py tf /tmp/mn/x /tmp/parity.npz
    python experiments/musicnn_parity.py ours /tmp/mn/x /tmp/parity.npz

The `tf` step (TensorFlow's environment) renders three 3 s test signals, computes musicnn's
own input (librosa mel power, log10(1 + 10000 x)), runs musicnn's graph restored from the
wheel's MTT_musicnn checkpoint, and saves the inputs, every checkpoint tensor as TensorFlow
reads it, the penultimate features and the tag logits. The `ours` step (this package's
environment) reads the same checkpoint with `read_checkpoint`, feeds the dB of the same
mel power to `musicnn.musicnn`, and prints the largest differences.
"""

import sys

import numpy as np


def _signals(sr=16000, seconds=3):
  rng = np.random.default_rng(0)
  t = np.arange(seconds * sr) / sr
  return [0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-t),  # a decaying tone
          rng.normal(0, 0.1, t.size) * np.exp(-5 * (t % 0.5)),  # noise bursts
          0.2 * np.sign(np.sin(2 * np.pi * 196 * t))]  # a square wave


def tf_side(wheel_dir, out):
  import librosa
  import tensorflow as tf

  sys.path.insert(0, wheel_dir)
  from musicnn import models

  prefix = f"{wheel_dir}/musicnn/MTT_musicnn/"
  power = np.stack([librosa.feature.melspectrogram(y=w.astype(np.float32), sr=16000, hop_length=256, n_fft=512,
                                                   n_mels=96).T[:187] for w in _signals()])
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)
  tensors = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
  tf.compat.v1.disable_eager_execution()
  x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
  training = tf.compat.v1.placeholder(tf.bool)
  out_tensors = models.define_model(x, training, "MTT_musicnn", 50)
  with tf.compat.v1.Session() as sess:
    tf.compat.v1.train.Saver().restore(sess, prefix)
    logits, penultimate = sess.run([out_tensors[0], out_tensors[-1]],
                                   {x: np.log10(10000 * power + 1).astype(np.float32), training: False})
  np.savez(out, power=power, logits=logits, penultimate=penultimate,
           **{"tensor:" + k: v for k, v in tensors.items()})


def ours_side(wheel_dir, out):
  from instruments_jax import musicnn

  ref = np.load(out)
  prefix = f"{wheel_dir}/musicnn/MTT_musicnn/"
  tensors = musicnn.read_checkpoint(prefix)
  theirs = {k[len("tensor:"):] for k in ref.files if k.startswith("tensor:")}
  unequal = [k for k in theirs if not np.array_equal(tensors.get(k), ref["tensor:" + k])]
  print(f"checkpoint: {len(tensors)} tensors read, {len(theirs)} in TensorFlow's reader, {len(unequal)} unequal",
        unequal[:5])
  net = musicnn.musicnn(input_shape=(96, None, 1))
  musicnn.load_weights(net, prefix)
  db = 10 * np.log10(np.maximum(ref["power"], 1e-10))
  penultimate = np.asarray(net(np.swapaxes(db, 1, 2)[..., None].astype(np.float32), training=False))
  kernel, bias = musicnn.checkpoint_weights(tensors)["tags"]
  logits = penultimate @ kernel + bias
  print(f"penultimate [{penultimate.shape}]: max |ours - TF| {np.abs(penultimate - ref['penultimate']).max():.2e}"
        f" (largest value {np.abs(ref['penultimate']).max():.2f})")
  print(f"tag logits: max |ours - TF| {np.abs(logits - ref['logits']).max():.2e}")


if __name__ == "__main__":
  side, wheel_dir, out = sys.argv[1:4]
  (tf_side if side == "tf" else ours_side)(wheel_dir, out)
