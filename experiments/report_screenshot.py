"""Screenshots a listening report in headless Chromium: `python experiments/report_screenshot.py REPORT.html OUT.png`.

Scrolls to the clips table so the picture shows scores, controls and the first clips; prints the
console errors (none expected) and every audio element's duration.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import chromium  # noqa: E402  (tests/chromium.py)


def main(page: str, out: str, width: int = 1400, height: int = 1300) -> None:
  b = chromium.Browser(width=width, height=height)
  try:
    b.open(page)
    durations = b.eval("Promise.all([...document.querySelectorAll('audio')].map(a => a.readyState >= 1 ? a.duration "
                       ": new Promise(r => a.addEventListener('loadedmetadata', () => r(a.duration)))))")
    b.screenshot(out)
    print(f"wrote {out}; audio durations {durations}; console errors {b.errors}")
  finally:
    b.close()


if __name__ == "__main__":
  main(*sys.argv[1:3])
