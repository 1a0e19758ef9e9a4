"""The README's screenshot of the web page: ``kronos serve`` on a free loopback port, headless chromium.

    python docs/serve_screenshot.py                       # the shipped model
    python docs/serve_screenshot.py --model DIR --out docs/images/serve_page.png

The page runs a forecast of the bundled GOOGL sample on load (``?autorun=1``) and chromium captures it.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parent / "images" / "serve_page.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="kronos-open")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--query", default="pred_len=30&sample_count=200&lookback=160&seed=0")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium on PATH (apt-get install chromium)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "kronos", "serve", "--model", args.model, "--port", str(port), "--log-level", "warning"]
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the server did not start")
                time.sleep(0.3)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp.png")
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,1000",
                "--virtual-time-budget=60000",
                f"--screenshot={tmp}",
                f"http://127.0.0.1:{port}/?autorun=1&{args.query}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        tmp.replace(args.out)  # atomic: the old picture stays until the new one is complete
        print(f"wrote {args.out}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
