"""Headless Chromium over the DevTools protocol: open a page from disk, run script, collect errors, screenshot.

A small client of Chromium's own remote-debugging websocket (websocket-client), so that any
Chromium version Debian ships works: no browser download, no driver to match.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find() -> str | None:
  """Returns a Chromium binary on PATH, or None."""
  return next((shutil.which(b) for b in BINARIES if shutil.which(b)), None)


class Browser:
  """One headless Chromium with one page; `errors` collects console errors and uncaught exceptions."""

  def __init__(self, binary: str | None = None, width: int = 1400, height: int = 1000, timeout: float = 60):
    import websocket

    binary = binary or find()
    if binary is None:
      raise FileNotFoundError(f"no Chromium on PATH (tried {', '.join(BINARIES)}); apt-get install chromium")
    self.profile = tempfile.mkdtemp(prefix="chromium_")
    self.proc = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--mute-audio", "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={self.profile}",
         f"--window-size={width},{height}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(self.profile, "DevToolsActivePort")
    deadline = time.time() + timeout
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
      if time.time() > deadline or self.proc.poll() is not None:
        self.close()
        raise RuntimeError(f"{binary} did not start its DevTools server")
      time.sleep(0.1)
    port = open(port_file).read().split()[0]
    pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout))
    url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
    self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
    self.next_id, self.errors, self.events = 0, [], []
    for domain in ("Page", "Runtime", "Log"):
      self.call(f"{domain}.enable")
    self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

  def _on_event(self, msg: dict) -> None:
    method, params = msg.get("method"), msg.get("params", {})
    self.events.append(method)
    if method == "Runtime.exceptionThrown":
      d = params["exceptionDetails"]
      self.errors.append(d.get("exception", {}).get("description") or d.get("text"))
    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
      self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
    elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
      self.errors.append(params["entry"].get("text"))

  def call(self, method: str, **params) -> dict:
    """Sends one command and returns its result, recording the events that arrive meanwhile."""
    self.next_id += 1
    self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
    while True:
      msg = json.loads(self.ws.recv())
      if msg.get("id") == self.next_id:
        if "error" in msg:
          raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})
      self._on_event(msg)

  def open(self, path: str, timeout: float = 60) -> None:
    """Loads a file and waits for its load event."""
    self.events.clear()
    self.call("Page.navigate", url="file://" + os.path.abspath(path))
    deadline = time.time() + timeout
    while "Page.loadEventFired" not in self.events:
      if time.time() > deadline:
        raise TimeoutError(f"{path} did not load in {timeout}s")
      self._on_event(json.loads(self.ws.recv()))

  def eval(self, expression: str):
    """Returns the value of a JavaScript expression (promises awaited)."""
    r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in r:
      raise RuntimeError(f"{expression[:80]}...: {r['exceptionDetails']}")
    return r["result"].get("value")

  def screenshot(self, path: str, full_page: bool = False) -> None:
    r = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
    with open(path, "wb") as f:
      f.write(base64.b64decode(r["data"]))

  def close(self) -> None:
    try:
      if getattr(self, "ws", None):
        self.ws.close()
    finally:
      self.proc.kill()
      self.proc.wait()
      shutil.rmtree(self.profile, ignore_errors=True)
