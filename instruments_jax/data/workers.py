"""What every data worker process (grain's, and the feature cache fill's) runs first."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(*_) -> None:
  """Asks Linux to SIGKILL this process when its parent dies, SIGKILL and OOM kills included.

  Without it a killed run leaves its worker processes behind, each holding memory and the
  run's stdout. Elsewhere (macOS) workers notice the broken pipe on their own, later.
  Takes and ignores grain's (worker_index, worker_count).
  """
  if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
