"""What the command-line entry points share: config flags, one config check, clean errors.

`train` and `profile` take `--config=NAME` (a named config or a config file) and
`--config.FIELD=VALUE` overrides; `--describe_config` prints every field with
its type, its value and its meaning, `--print_config` the resolved config as
JSON. Every config is checked by `configs.validate` before any data or model
work: a wrong value ends in one `error:` message naming each bad field, exit
status 2. Errors a user can fix (bad data, a busy workdir, missing weights)
end in an `error:` line and exit status 1; neither shows a traceback.

SIGTERM and SIGINT stop an entry point cleanly from its first line
(`stop_on_signals`): outside a training loop they end the process with a note
saying what was kept (`STOP_NOTE`), exit status 0 for SIGTERM and 130 for SIGINT;
the training loop takes them over to checkpoint first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from absl import app, flags
from ml_collections import config_flags

from instruments_jax import checkpoint, configs
from instruments_jax.data.audio import DataError

CONFIG = config_flags.DEFINE_config_file(
    "config", None, f"A named config ({', '.join(configs.NAMES)}) or a config file; override any field with "
    "--config.SECTION.FIELD=VALUE (--describe_config lists them all).")
PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "Print the resolved config as JSON and exit.")
DESCRIBE_CONFIG = flags.DEFINE_bool("describe_config", False,
                                    "Print every config field (type, value in the chosen config, meaning) and exit.")

CONFIG_ERROR_STATUS = 2
SIGNAL_STATUS = {signal.SIGTERM: 0, signal.SIGINT: 130}  # a stop asked for is no failure; Ctrl-C is 128 + 2

# What a stop outside the training loop leaves behind; train.py updates it as the run goes.
STOP_NOTE = ["nothing needed saving"]


class Stopped(BaseException):
  """SIGTERM or SIGINT outside the training loop (a BaseException, like KeyboardInterrupt)."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


_RUNNING = []  # set once `run` can catch Stopped; before that (imports) a stop exits at once
_PENDING = []  # signals received: `check_stop` raises for them again if the first raise was swallowed


def _raise_stopped(signum, frame):
  del frame
  if not _RUNNING:
    print(f"{signal.Signals(signum).name}: stopped while starting; {STOP_NOTE[0]}", file=sys.stderr, flush=True)
    os._exit(SIGNAL_STATUS[signum])  # nothing is open yet: imports only
  _PENDING.append(signum)
  raise Stopped(signum)  # lands wherever Python is; inside a gc or weakref callback it is ignored, hence _PENDING


def check_stop() -> None:
  """Raises Stopped if a stop signal arrived (entry points call it between phases)."""
  if _PENDING:
    raise Stopped(_PENDING[0])


def stop_on_signals() -> None:
  """Makes SIGTERM and SIGINT raise Stopped, which `run` turns into a note and a clean exit."""
  _quiet_unraisable()
  for sig in SIGNAL_STATUS:
    signal.signal(sig, _raise_stopped)


def exit_stopped(signum: int) -> None:
  """Ends the process after a stop signal: one line saying what was kept, SIGNAL_STATUS's exit status."""
  print(f"{signal.Signals(signum).name}: stopped; {STOP_NOTE[0]}", file=sys.stderr, flush=True)
  sys.exit(SIGNAL_STATUS[signum])


def _quiet_unraisable() -> None:
  """Drops asyncio's "Event loop is closed" from orbax's threads after a failed read: noise, not news."""
  default = sys.__unraisablehook__

  def hook(unraisable):
    e = unraisable.exc_value
    if isinstance(e, Stopped):  # raised inside a gc callback, which ignores it: check_stop raises it again
      return
    if not (isinstance(e, RuntimeError) and "Event loop is closed" in str(e)):
      default(unraisable)

  sys.unraisablehook = hook


def user_errors() -> tuple[type[BaseException], ...]:
  """Returns the exceptions that mean bad input rather than a bug: shown as one `error:` line."""
  from instruments_jax.model import WeightsUnavailable

  return (DataError, FileNotFoundError, PermissionError, checkpoint.WorkdirBusy, checkpoint.RunDirError,
          checkpoint.DiskFull, WeightsUnavailable)


@contextlib.contextmanager
def clean_errors(*also: type[BaseException]):
  """Ends the process on a config error (exit 2) or a user error (or one of `also`: exit 1), without a traceback."""
  _quiet_unraisable()
  try:
    yield
  except Stopped:  # first: a stop may have cut an import short, which user_errors() would trip on
    raise
  except configs.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(CONFIG_ERROR_STATUS)
  except (*user_errors(), *also) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


def named_config_argv(argv: list[str]) -> list[str]:
  """Rewrites `--config=NAME` into the path of configs/NAME.py, so named configs work with config_flags."""
  out = []
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      name = a.split("=", 1)[1]
      if name in configs.NAMES:
        a = "--config=" + os.path.join(os.path.dirname(configs.__file__), f"{name}.py")
    elif i > 0 and argv[i - 1] == "--config" and a in configs.NAMES:
      a = os.path.join(os.path.dirname(configs.__file__), f"{a}.py")
    out.append(a)
  return out


def _unknown_override(argv: list[str]) -> str | None:
  """Returns a message for the first `--config.PATH=` whose PATH is no field, or None."""
  for a in argv:
    if a.startswith("--config."):
      path = a[len("--config."):].split("=", 1)[0]
      if path not in configs.FIELDS:
        hint = configs.suggest(path, configs.FIELDS) or "; --describe_config lists every field"
        return f"{path}: no such config field (from {a}){hint}"
  return None


def _config_file_error(argv: list[str]) -> str:
  config_arg = next((a for a in argv if a.startswith("--config=")), "--config")
  return f"{config_arg}: neither a named config ({', '.join(configs.NAMES)}) nor a loadable config file"


def _parse_flags(argv: list[str]) -> list[str]:
  """Parses flags like absl does, but a bad value ends in one `error:` line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # noqa: BLE001  (absl's flags.Error, or ml_collections' KeyError / AttributeError / OSError)
    message = _unknown_override(argv[1:])
    if message is None:
      message = _config_file_error(argv) if isinstance(e, OSError) else str(e.args[0] if e.args else e)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(CONFIG_ERROR_STATUS)


def run(main) -> None:
  """Runs an absl `main` with named configs, clean flag errors and clean stops on SIGTERM / SIGINT."""
  stop_on_signals()
  _RUNNING.append(True)

  def guarded(argv):
    try:
      return main(argv)
    except Stopped as e:
      exit_stopped(e.signum)

  try:
    app.run(guarded, argv=named_config_argv(sys.argv), flags_parser=_parse_flags)
  except Stopped as e:  # while flags parse, before main
    exit_stopped(e.signum)


def config_or_exit(device_count: int | None = None):
  """Returns the checked config of --config; handles --print_config / --describe_config (exits after them).

  Any invalid field ends the process with every problem listed and exit status 2.
  """
  try:
    cfg = CONFIG.value
    if cfg is not None:
      cfg.to_dict  # noqa: B018  (a file that failed to load is a placeholder that raises on any attribute)
  except Exception:  # noqa: BLE001  (a missing file, or one that raises while loading)
    print(f"error: {_config_file_error(sys.argv)}", file=sys.stderr)
    sys.exit(CONFIG_ERROR_STATUS)
  if cfg is None:
    print(f"error: --config is required ({', '.join(configs.NAMES)} or a config file)", file=sys.stderr)
    sys.exit(CONFIG_ERROR_STATUS)
  if DESCRIBE_CONFIG.value:
    print(configs.describe(cfg))
    sys.exit(0)
  try:
    configs.validate(cfg, device_count=device_count)
  except configs.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(CONFIG_ERROR_STATUS)
  if PRINT_CONFIG.value:
    print(cfg.to_json_best_effort(indent=2))
    sys.exit(0)
  return cfg
