"""The package's imports point down a fixed layer order and form no cycle (parsed, not imported)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "instruments_jax"

# Bottom to top. A module may import modules of its own layer or of layers below, never above;
# the order is written here once (BUILD_NOTES.md explains the cut).
LAYERS = [
    ("root", ["instruments_jax"]),  # selects the JAX backend
    ("configs", ["instruments_jax.configs*"]),  # named configs, the field schema, validate, describe
    ("data", ["instruments_jax.data*"]),  # sources, audio, features, cache, augment, pipeline, synth, inspect
    ("model", ["instruments_jax.musicnn", "instruments_jax.model", "instruments_jax.losses"]),
    ("step", ["instruments_jax.step"]),  # optimizer, train state, mesh, jitted steps, setup()
    ("run", ["instruments_jax.checkpoint", "instruments_jax.rundir", "instruments_jax.metrics", "instruments_jax.plots",
             "instruments_jax.classifier", "instruments_jax.board", "instruments_jax.report"]),
    ("cli", ["instruments_jax.cli"]),  # flags, the one config check, clean errors
    ("entry points", ["instruments_jax.train", "instruments_jax.evaluate", "instruments_jax.predict",
                      "instruments_jax.export", "instruments_jax.profile"]),
]
# The package's public names, imported lazily by `instruments_jax.__getattr__` when a user asks
# for them (`instruments_jax.load_classifier`): never run by the package's own imports.
FACADE = {"instruments_jax": {"instruments_jax.model", "instruments_jax.classifier", "instruments_jax.configs"}}


def _modules() -> dict[str, pathlib.Path]:
  out = {}
  for path in PACKAGE.rglob("*.py"):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    out[".".join(parts)] = path
  return out


def _layer(module: str) -> int:
  for index, (_, patterns) in enumerate(LAYERS):
    for p in patterns:
      if module == p or (p.endswith("*") and (module == p[:-1] or module.startswith(p[:-1] + "."))):
        return index
  raise AssertionError(f"{module} is in no layer; add it to LAYERS")


def _imports(module: str, path: pathlib.Path, modules) -> set[str]:
  """Returns the package modules `module` imports anywhere in its file (functions included)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
    for name in names:
      while name and name not in modules:  # `import instruments_jax.data.audio as x` names a module; strip attributes
        name = name.rpartition(".")[0]
      if name.startswith("instruments_jax") and name != module:
        found.add(name)
  return found - FACADE.get(module, set())


def _graph():
  modules = _modules()
  return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_every_module_has_a_layer():
  for module in _modules():
    _layer(module)


def test_imports_only_point_down():
  upward = [f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
            for m, targets in sorted(_graph().items()) for t in sorted(targets) if _layer(t) > _layer(m)]
  assert not upward, "\n".join(upward)


def test_no_import_cycles():
  graph = _graph()
  state, cycles = {}, []

  def visit(m, stack):
    state[m] = "open"
    for t in sorted(graph.get(m, ())):
      if state.get(t) == "open":
        cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
      elif t not in state:
        visit(t, stack + [t])
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [m])
  assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("source,expect", [
    ("from instruments_jax.train import x\n", "instruments_jax.train"),
    ("def f():\n  import instruments_jax.step\n", "instruments_jax.step"),
])
def test_the_parser_sees_module_and_function_level_imports(tmp_path, source, expect):
  path = tmp_path / "m.py"
  path.write_text(source)
  assert _imports("instruments_jax.model", path, _modules()) == {expect}
