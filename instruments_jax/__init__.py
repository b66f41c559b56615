"""instruments_jax: classify musical instruments from audio with ResNet50 on Keras 3 / JAX."""

import os

# Keras picks its backend once, at first import: make it JAX before anyone imports keras.
os.environ.setdefault("KERAS_BACKEND", "jax")

__all__ = ["build_model", "configs", "load_classifier"]


def __getattr__(name):
  # Lazy, so that data-loading worker processes never import keras or jax.
  if name == "build_model":
    from instruments_jax.model import build_model

    return build_model
  if name == "load_classifier":
    from instruments_jax.classifier import load_classifier

    return load_classifier
  if name == "configs":
    import importlib

    return importlib.import_module("instruments_jax.configs")
  raise AttributeError(name)
