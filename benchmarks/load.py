"""A classroom at once: 30 clients upload through the running app (loopback only, bounded).

    python benchmarks/load.py [--clients 30] [--soak 300] [--model FOLDER] [--no-nice]

Starts `python app.py --compile wait` on 127.0.0.1 (the compiled forward is built before serving,
so the figures are a classroom's steady state; --compile off measures eager) with the
ViT-B/16 architecture (random weights, as in bench.py) unless --model is given, then measures,
with gradio_client:

  sequential  30 uploads one after another (one client)
  burst       30 clients uploading at the same moment: every answer, p50 / p95 latency, total
  soak        300 more requests over the same 30 sessions: server RSS after warm-up vs at the end

Every request has a timeout and the script a deadline; it only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHOTOS = sorted(str(p) for p in (ROOT / "assets" / "examples").glob("*.jpg"))
REQUEST_TIMEOUT_S = 120
DEADLINE_S = 1500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, seconds: float = 300) -> None:
    """Until the server on 127.0.0.1:port accepts connections (it may compile first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no server on port {port} after {seconds:.0f} s")


@contextmanager
def running_app(*args: str, log: Path | None = None):
    """`python app.py ARGS` on a free loopback port, stopped on exit: yields (pid, url). log: a file
    for the server's output (else it is dropped)."""
    port = free_port()
    env = dict(os.environ, VITVIZ_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    out = open(log, "w") if log else subprocess.DEVNULL    # noqa: SIM115 (closed with the server below)
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args, "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(port)
        yield server.pid, f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        if log:
            out.close()


class RssSampler(threading.Thread):
    """Samples a process's resident memory every 0.2 s; keeps the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def now(self) -> int:
        return self.proc.memory_info().rss

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.now())
            except Exception:
                return
            time.sleep(0.2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=30)
    p.add_argument("--soak", type=int, default=300)
    p.add_argument("--model", default=None, help="model folder (default: random ViT-B/16)")
    p.add_argument("--no-nice", dest="nice", action="store_false", help="clients at the server's CPU priority")
    p.add_argument("--compile", default="wait", choices=["wait", "off"], help="the app's compiled forward, or eager")
    a = p.parse_args()
    started = time.monotonic()

    from gradio_client import Client, handle_file

    from benchmarks.bench import cpu_flags, vit_b16_folder

    model = a.model or vit_b16_folder()
    with running_app("--model", model, "--compile", a.compile) as (pid, url):
        sampler = RssSampler(pid)
        sampler.start()
        # The students' browsers run on their own machines; here the 30 clients share the server's 2
        # cores (~80 ms of CPU per request in gradio_client), so they run at a lower priority (nice 10)
        # to disturb what they measure as little as possible. --no-nice measures without.
        if a.nice:
            os.nice(10)
        # For the same reason the clients leave the pictures on the server (download_files=False):
        # students' browsers fetch them on their own machines.
        clients = [Client(url, verbose=False, download_files=False) for _ in range(a.clients)]
        api = clients[0].view_api(print_info=False, return_format="dict")
        size = api["named_endpoints"]["/analyze"]["parameters"][2]["parameter_default"]

        def upload(i: int) -> tuple[float, bool]:
            t0 = time.perf_counter()
            job = clients[i % len(clients)].submit(handle_file(PHOTOS[i % len(PHOTOS)]), model, size, "en",
                                                   api_name="/analyze")
            out = job.result(timeout=REQUEST_TIMEOUT_S)
            return time.perf_counter() - t0, str(out[0]).startswith("Analyzed")

        upload(0)                                   # warm-up: model loaded, first pass done
        t0 = time.perf_counter()
        seq = [upload(i) for i in range(a.clients)]
        t_seq = time.perf_counter() - t0

        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.clients) as pool:
            burst = list(pool.map(upload, range(a.clients)))
        t_burst = time.perf_counter() - t0
        lat = sorted(x[0] for x in burst)
        ok = sum(x[1] for x in burst)
        rss_warm = sampler.now()

        soak_ok = 0
        with ThreadPoolExecutor(a.clients) as pool:
            for _, good in pool.map(upload, range(a.soak)):
                soak_ok += good
                if time.monotonic() - started > DEADLINE_S:
                    break
        rss_end = sampler.now()
        sampler.stop.set()

        print(f"\nvitviz load test · {a.clients} clients · model {'ViT-B/16 random' if not a.model else a.model} · "
              f"{cpu_flags()}")
        print(f"sequential {a.clients} uploads: {t_seq:.1f} s ({t_seq / a.clients:.2f} s each), "
              f"all ok: {all(g for _, g in seq)}")
        print(f"burst of {a.clients} at once:  {t_burst:.1f} s total, {ok}/{a.clients} ok, "
              f"p50 {statistics.median(lat):.2f} s, p95 {lat[int(0.95 * (len(lat) - 1))]:.2f} s, "
              f"speed-up vs sequential {t_seq / t_burst:.2f}×")
        print(f"soak: {soak_ok}/{a.soak} ok; server RSS after warm-up {rss_warm / 2**20:.0f} MB, "
              f"after soak {rss_end / 2**20:.0f} MB ({100 * (rss_end / rss_warm - 1):+.1f} %), "
              f"peak {sampler.peak / 2**20:.0f} MB with {a.clients} sessions")


if __name__ == "__main__":
    main()
