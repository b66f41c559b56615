"""What every data worker process (grain's, and the feature cache fill's) runs first."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(*_) -> None:
  """Asks Linux to SIGKILL this process when its parent dies, SIGKILL and OOM kills included.

  Without it a killed run leaves its worker processes behind, each holding memory and the
  run's stdout. A worker whose parent died before this ran (it was still importing) has been
  handed to init: it exits at once.
  Takes and ignores grain's (worker_index, worker_count).
  """
  if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
  if os.getppid() == 1:  # the parent died while this worker was still starting: too late for the signal
    os._exit(1)
