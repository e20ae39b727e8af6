"""`cos-matting dashboard` with 10,000 records: time to first rows in headless Chromium, what each
view's request costs, and the server's memory.

Records are written straight into the local cloud's store through the real RecordStore
(benchmarks/status_scale.py `fill`: 100 open records, the rest finished), the local cloud runs in
its own process, the dashboard runs as the installed command; Chromium (cli/browser.Chromium) opens
the printed URL. Time to first rows is from navigation to the first row in the table, median of
--runs page loads (a new page each, the open view and then the finished view); memory is the
dashboard process's peak RSS (VmHWM) after every load and the totals' listing have run.

    .venv/bin/python benchmarks/dashboard_scale.py [--records 10000] [--open 100] [--runs 3] [--screenshot PNG]
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cloud import BUCKET, REGION, start_cloud  # noqa: E402
from status_scale import fill_elsewhere  # noqa: E402

SCRIPT = Path(sys.executable).with_name("cos-matting")


def start_dashboard(url: str, cache: str):
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("COS_MATTING_", "TENCENTCLOUD_"))}
    env = {**keep, "COS_MATTING_BUCKET": BUCKET, "COS_MATTING_REGION": REGION, "COS_MATTING_CALLBACK_KEYS": "k" * 32,
           "XDG_CACHE_HOME": cache}
    proc = subprocess.Popen([str(SCRIPT), "dashboard", "--port", "0", "--local", url], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    match = re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=(\S+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise SystemExit("the dashboard did not start")
    return proc, match.group(1), int(match.group(2)), match.group(3)


def api(port: int, path: str, token: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", f"{path}{'&' if '?' in path else '?'}token={token}")
    body = json.loads(conn.getresponse().read())
    return time.perf_counter() - started, body


def rss_mib(pid: int) -> tuple:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="records in all (default: %(default)s)")
    parser.add_argument("--open", type=int, default=100, help="of which open (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="page loads per view (default: %(default)s)")
    parser.add_argument("--screenshot", metavar="PNG", help="save the page with the first rows here")
    args = parser.parse_args()
    from cli.browser import Chromium

    print(f"dashboard at scale: {args.records} records ({args.open} open); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cos-matting-dashboard-") as tmp:
        seconds = fill_elsewhere(os.path.join(tmp, "data"), args.open, args.records - args.open)
        print(f"wrote {args.records} records in {seconds:.0f} s", flush=True)
        cloud, url = start_cloud(os.path.join(tmp, "data"))
        board = None
        try:
            board, base, port, token = start_dashboard(url, os.path.join(tmp, "cache"))
            idle = rss_mib(board.pid)[0]
            for view in ("open", "finished", "failed"):
                wall, body = api(port, f"/api/records?view={view}&since=all", token)
                print(f"  GET /api/records?view={view}: {wall:.2f} s, {len(body['rows'])} rows, "
                      f"{body['read']} records read", flush=True)
            api(port, "/api/stats", token)  # starts the background listing
            started = time.perf_counter()
            while "computing" in api(port, "/api/stats", token)[1]:
                time.sleep(0.2)
            stats = api(port, "/api/stats", token)[1]
            print(f"  totals and chart (listings only, in the background): {stats['seconds']:.2f} s for "
                  f"{stats['records']} records (seen after {time.perf_counter() - started:.1f} s)", flush=True)
            loads = {"open": [], "finished": []}
            with Chromium(width=1400, height=1000) as page:
                for _ in range(args.runs):
                    for view in loads:
                        page.goto("about:blank")
                        started = time.perf_counter()
                        page.goto(f"{base}/?token={token}" if view == "open" else f"{base}/?token={token}")
                        if view == "finished":
                            page.wait("!!document.querySelector('select[name=view]')", interval=0.01)
                            page.eval("const v = document.querySelector('select[name=view]'); v.value = 'finished';"
                                      "v.dispatchEvent(new Event('change', {bubbles: true}))")
                            page.wait("[...document.querySelectorAll('#records tbody tr')].some(tr => "
                                      "tr.textContent.includes('Success'))", timeout=120, interval=0.01)
                        else:
                            page.wait("document.querySelectorAll('#records tbody tr').length > 0", timeout=120,
                                      interval=0.01)
                        loads[view].append(time.perf_counter() - started)
                if args.screenshot:
                    page.screenshot(Path(args.screenshot))
            now, peak = rss_mib(board.pid)
            for view, walls in loads.items():
                print(f"time to first rows, {view} view: {statistics.median(walls):.2f} s (median of {len(walls)}; "
                      f"{min(walls):.2f}-{max(walls):.2f})")
            print(f"dashboard server memory: {idle:.0f} MiB at start, {now:.0f} MiB after, peak RSS {peak:.0f} MiB")
        finally:
            for proc in (board, cloud):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
