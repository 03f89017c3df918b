"""Screenshot of a web page with headless Chromium after a fixed wait in real time.

    python docs/screenshot.py URL OUT.png [--width 1400] [--height 900] [--wait 40]

Chromium 150's own `--screenshot --virtual-time-budget=30000` did not return within minutes on
MLflow 3.17's UI on a busy machine, and without the budget it captures the loading placeholders.
This drives Chromium through its DevTools protocol instead: open the page, wait, capture. Written
by hand over aiohttp's websocket client (already installed with MLflow) because the browser
automation libraries (Playwright, Selenium) download their own browsers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import subprocess
import tempfile
import time

import aiohttp


async def capture(url: str, out: str, width: int, height: int, wait_s: float) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:  # Chromium helpers may linger
        browser = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             f"--remote-debugging-port={port}", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession() as session:
                pages = await _devtools_pages(session, port)
                async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    calls = iter(range(1, 1 << 30))

                    async def call(method: str, **params):
                        number = next(calls)
                        await ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
                        async for message in ws:
                            answer = json.loads(message.data)
                            if answer.get("id") == number:
                                return answer.get("result", {})

                    await call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                               mobile=False)
                    await call("Page.navigate", url=url)
                    await asyncio.sleep(wait_s)
                    shot = await call("Page.captureScreenshot", format="png")
            with open(out, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        finally:
            browser.terminate()
            browser.wait(timeout=30)


async def _devtools_pages(session: aiohttp.ClientSession, port: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [p for p in await response.json() if p.get("type") == "page"]
                if pages:
                    return pages
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--wait", type=float, default=40.0, help="seconds to let the page load")
    args = parser.parse_args()
    asyncio.run(capture(args.url, args.out, args.width, args.height, args.wait))
