"""A public server under hostile and flooding requests (loopback only, bounded).

    python benchmarks/hostile.py [--flood 200] [--clients 40] [--model FOLDER]

Starts `python app.py --public --compile off` on 127.0.0.1 as a Space would run it (ViT-B/16
architecture with random weights unless --model is given), then, with gradio_client:

  refusals  models outside the list (paths, a long name, an id that may be cached), malformed,
            off-grid, oversized and unlisted sizes: the answer's words, its latency, and the
            server's resident memory before, during and after
  flood     --flood uploads submitted at once from --clients clients: how many were analyzed,
            how many were told the server is busy, how many failed otherwise, the peak memory
  after     a normal upload is still analyzed

Every request has a timeout and the script a deadline; it only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import PHOTOS, REQUEST_TIMEOUT_S, RssSampler, running_app  # noqa: E402

HOSTILE_MODELS = ["/etc", "../assets/models", "/root/.cache/huggingface", "facebook/some-cached-model",
                  "x" * 5000]
HOSTILE_SIZES = ["abc", "40x40", "-224x224", "9" * 400, "224x224; rm -rf /", "672x672", "4000x4000",
                 "99999x99999"]
LEAKS = ("Error", "Traceback", "Exception", "errno", "/tmp/", "/root/", "/work/", "site-packages")


def refusals(client, model: str, size: str, sampler: RssSampler) -> dict:
    """Every hostile request once: latencies, leaked words, memory before / peak / after."""
    from gradio_client import handle_file

    before = sampler.now()
    sampler.peak = before
    latencies, leaks, answers = [], [], []
    for name, hw in [(m, size) for m in HOSTILE_MODELS] + [(model, s) for s in HOSTILE_SIZES]:
        for lang in ("en", "ko"):
            t0 = time.perf_counter()
            msg = str(client.predict(handle_file(PHOTOS[0]), name, hw, lang, api_name="/analyze")[0])
            latencies.append(time.perf_counter() - t0)
            answers.append(msg)
            leaks += [w for w in LEAKS if w in msg.replace(model, "")]
    return {"n": len(latencies), "p50": statistics.median(latencies), "max": max(latencies), "leaks": leaks,
            "analyzed": sum(a.startswith("Analyzed") or "분석했어요" in a for a in answers),
            "before": before, "peak": sampler.peak, "after": sampler.now(), "example": answers[-2]}


def flood(clients: list, model: str, size: str, n: int, sampler: RssSampler) -> dict:
    """n uploads at once: analyzed, told busy, failed otherwise; the peak memory."""
    from gradio_client import handle_file

    sampler.peak = sampler.now()
    jobs = [clients[i % len(clients)].submit(handle_file(PHOTOS[i % len(PHOTOS)]), model, size, "en",
                                             api_name="/analyze") for i in range(n)]
    t0 = time.perf_counter()

    def outcome(job) -> str:
        try:
            return "analyzed" if str(job.result(timeout=REQUEST_TIMEOUT_S)[0]).startswith("Analyzed") else "other"
        except Exception as exc:                       # the admission step's translated gr.Error
            return "busy" if "busy" in str(exc) else f"failed: {type(exc).__name__}"

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(outcome, jobs))
    counts = {k: results.count(k) for k in sorted(set(results))}
    return {"counts": counts, "seconds": time.perf_counter() - t0, "peak": sampler.peak}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--flood", type=int, default=200)
    p.add_argument("--clients", type=int, default=40)
    p.add_argument("--model", default=None, help="model folder (default: random ViT-B/16)")
    a = p.parse_args()

    from gradio_client import Client, handle_file

    from benchmarks.bench import vit_b16_folder

    model = a.model or vit_b16_folder()
    with running_app("--model", model, "--public", "--compile", "off") as (pid, url):
        sampler = RssSampler(pid)
        sampler.start()
        client = Client(url, verbose=False, download_files=False)
        size = client.view_api(print_info=False, return_format="dict")[
            "named_endpoints"]["/analyze"]["parameters"][2]["parameter_default"]
        client.predict(handle_file(PHOTOS[0]), model, size, "en", api_name="/analyze")      # warm-up
        r = refusals(client, model, size, sampler)
        clients = [Client(url, verbose=False, download_files=False) for _ in range(a.clients)]
        f = flood(clients, model, size, a.flood, sampler)
        still = str(client.predict(handle_file(PHOTOS[1]), model, size, "en", api_name="/analyze")[0])
    mb = 2**20
    print(f"\nvitviz under hostile requests · public mode · model {'ViT-B/16 random' if not a.model else a.model}")
    print(f"refusals: {r['n']} requests (models outside the list, paths, bad sizes; en + ko): "
          f"{r['analyzed']} analyzed, latency p50 {1000 * r['p50']:.0f} ms, max {1000 * r['max']:.0f} ms; "
          f"leaked words: {r['leaks'] or 'none'}")
    print(f"  server RSS {r['before'] / mb:.0f} MB before, peak {r['peak'] / mb:.0f} MB "
          f"(+{(r['peak'] - r['before']) / mb:.0f} MB), {r['after'] / mb:.0f} MB after")
    print(f"  e.g. {r['example']!r}")
    print(f"flood: {a.flood} uploads at once from {a.clients} clients in {f['seconds']:.1f} s: {f['counts']}; "
          f"peak RSS {f['peak'] / mb:.0f} MB")
    print(f"after: a normal upload -> {still[:60]!r}")

if __name__ == "__main__":
    main()
