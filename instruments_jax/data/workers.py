"""What every data worker process (grain's, and the feature cache fill's) runs first: `init`."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1


def init(*_) -> None:
  """A data worker's start: dies with its parent, and runs numpy's BLAS on one thread.

  Every worker is one of several processes sharing the machine's cores with each other and
  with the train step; OpenBLAS's own threads (one per core, spinning while they wait) then
  only compete with them. The embedded set's engines do many small matrix products:
  rendering a `quick` window took about half the CPU time on one BLAS thread that it took on
  two (experiments/RESULTS.md, "Issue 15, fourth round"). Takes and ignores grain's
  (worker_index, worker_count).
  """
  die_with_parent()
  _blas().limit(limits=1)  # for the life of this worker process


_LOCK = threading.Lock()
_HELD: list = []  # [the limiter, how many blocks hold it] while one_blas_thread blocks run in this process


def _blas():
  import threadpoolctl

  return threadpoolctl.ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def one_blas_thread():
  """Runs the block with numpy's BLAS on one thread, as data workers always do (`init`).

  A matrix product's last bits depend on how many threads share it, so audio rendered and
  features computed in this process then equal those of a worker process, and of any
  machine's core count. While blocks of several threads overlap, the limit holds until the
  last one ends; then the process's own setting is back.
  """
  with _LOCK:
    if not _HELD:
      _HELD.extend([_blas().limit(limits=1), 0])
    _HELD[1] += 1
  try:
    yield
  finally:
    with _LOCK:
      _HELD[1] -= 1
      if not _HELD[1]:
        _HELD.pop(0).restore_original_limits()
        _HELD.clear()


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
