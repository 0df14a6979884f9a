"""The research-scale evaluation: the same numbers from one process and from torchrun's two, a run
killed midway that resumes with only the unfinished part redone, torn lines never trusted, other
settings refused, and the data sources."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vitviz.data import class_folder_samples, imagenet_val_samples
from vitviz.evidence import journal

ROOT = Path(__file__).resolve().parent.parent
N = 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes named like the tiny model's labels, five photos each."""
    root = tmp_path_factory.mktemp("eval-data")
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir()
        for i in range(N // 2):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def evaluate(model, folder, out, *extra, procs: int = 0, wait: bool = True):
    args = ["-m", "vitviz.evaluate", "--model", model, "--folder", str(folder), "--out", str(out),
            "--limit", str(N), "--threads", "1", "--batch-size", "16", *extra]
    if procs:
        torchrun = shutil.which("torchrun") or pytest.skip("torchrun is not installed")
        cmd = [torchrun, "--standalone", "--nproc_per_node", str(procs), *args]
    else:
        cmd = [sys.executable, *args]
    env = {**os.environ, "VITVIZ_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((Path(out) / "results.json").read_text())


def assert_same_numbers(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        for key in ("pos_auc", "neg_auc"):
            assert abs(a[name][key] - b[name][key]) <= 1e-6, (name, key)
        assert np.allclose(a[name]["pos_curve"], b[name]["pos_curve"], atol=1e-6)
        assert np.allclose(a[name]["neg_curve"], b[name]["neg_curve"], atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(tiny_vit_dir, folder, tmp_path_factory):
    return evaluate(tiny_vit_dir, folder, tmp_path_factory.mktemp("one-process"))


def test_two_processes_under_torchrun_give_the_same_numbers(tiny_vit_dir, folder, tmp_path, uninterrupted):
    two = evaluate(tiny_vit_dir, folder, tmp_path, procs=2)
    assert two["timing"]["processes"] == 2 and two["n"] == N
    assert_same_numbers(uninterrupted["results"], two["results"])
    parts = sorted(p.name for p in tmp_path.glob("part-*.jsonl"))
    assert parts == ["part-0000-of-0002.jsonl", "part-0001-of-0002.jsonl"]


def test_a_killed_run_resumes_and_redoes_only_what_is_missing(tiny_vit_dir, folder, tmp_path, uninterrupted):
    run = evaluate(tiny_vit_dir, folder, tmp_path, wait=False)
    part = tmp_path / "part-0000-of-0001.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not part.exists() or part.read_text().count("\n") < 3):
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    with open(part, "a") as f:                      # a sample's line cut halfway by the kill
        f.write('{"index": 9, "label": 1, "pos": {"raw": [1, 1')
    done = len(journal.Journal(tmp_path).records())
    assert 3 <= done < N
    resumed = evaluate(tiny_vit_dir, folder, tmp_path)
    assert resumed["timing"]["found"] == done and resumed["timing"]["computed"] == N - done
    assert_same_numbers(uninterrupted["results"], resumed["results"])
    lines = part.read_text().splitlines(keepends=True)
    assert all(journal.decode(line) is not None for line in lines) and len(lines) == N   # the torn line is gone


def test_other_settings_on_the_same_folder_are_refused(tiny_vit_dir, folder, tmp_path):
    evaluate(tiny_vit_dir, folder, tmp_path, "--methods", "raw", "random")
    cmd = [sys.executable, "-m", "vitviz.evaluate", "--model", tiny_vit_dir, "--folder", str(folder),
           "--out", str(tmp_path), "--n", "4", "--methods", "raw", "random", "--steps", "5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VITVIZ_OFFLINE": "1"})
    assert done.returncode != 0 and "other settings" in done.stderr and "steps: 10 -> 5" in done.stderr


def test_a_torn_or_altered_line_is_never_trusted():
    line = journal.encode({"index": 3, "pred": 1})
    assert journal.decode(line) == {"index": 3, "pred": 1}
    assert journal.decode(line[:-1]) is None                        # no newline: cut by a kill
    assert journal.decode(line[:20] + "\n") is None                  # not JSON
    assert journal.decode(line.replace('"pred":1', '"pred":2')) is None   # checksum no longer matches


def test_folder_classes_follow_the_models_labels(folder):
    samples = class_folder_samples(folder, {"cat": 0, "cup": 2, "dog": 1})
    assert len(samples) == N and samples.labels[:5] == [0] * 5 and samples.labels[5:] == [1] * 5
    image, label, mask = samples.sample(7)
    assert image.mode == "RGB" and label == 1 and mask is None


def test_imagenet_validation_layout(tmp_path):
    for name in ("b.JPEG", "a.JPEG", "c.JPEG"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "labels.txt").write_text("5\n7\n9\n")                      # sorted file-name order
    assert imagenet_val_samples(tmp_path, tmp_path / "labels.txt").labels == [5, 7, 9]
    (tmp_path / "named.txt").write_text("c.JPEG 1\na.JPEG 2\nb.JPEG 3\n")
    assert imagenet_val_samples(tmp_path, tmp_path / "named.txt").labels == [2, 3, 1]


def test_records_identical_with_1_and_2_threads():
    """Regression: gradient maps computed with 1 and 2 threads differ by ~1e-7, so near-ties in the
    pixel ranking flipped and the pointing shares differed in their last digits: the same image gave
    another record depending on the thread count. Every record field must now be identical."""
    import torch

    from vitviz import data, methods, models
    from vitviz.core.paths import BUNDLED_DIR
    from vitviz.evidence.mprt import Randomiser
    from vitviz.evidence.sample import EvalSettings, evaluate_sample, perturbation_model

    if not (data.FASHION_MNIST_DIR.exists() and (BUNDLED_DIR / "config.json").exists()):
        pytest.skip("needs the bundled model and Fashion-MNIST")
    loaded = models.load(models.BUNDLED, "cpu", "float32")
    fast = perturbation_model(loaded)
    samples = data.FashionMNISTSamples(data.FASHION_MNIST_DIR, "t10k")
    settings = EvalSettings(model="bundled", data="t10k", methods=methods.ids(), metrics=("saco", "mprt"))
    randomiser = Randomiser(loaded, keep_random=True)
    threads = torch.get_num_threads()
    records = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            records[n] = [evaluate_sample(loaded, fast, *samples.sample(i), i, settings, randomiser=randomiser)
                          for i in (1, 2)]                      # both differed before the fix
    finally:
        torch.set_num_threads(threads)
    assert records[1] == records[2]
    assert {"saco", "mprt", "mprt_ssim", "pointing"} <= set(records[1][0])


def test_saco_sanity_check_road_and_legrad_from_the_command_line(tiny_vit_dir, folder, tmp_path):
    out = evaluate(tiny_vit_dir, folder, tmp_path, "--methods", "raw", "chefer", "legrad", "random",
                   "--metrics", "saco", "mprt", "--fill", "road", "--steps", "4", "--limit", "3")
    results = out["results"]
    assert set(results) == {"raw attention (last layer)", "Chefer generic", "LeGrad", "random"}
    for r in results.values():
        assert -1 <= r["saco"] <= 1 and r["pos_auc"] is not None
        # Quantus's cascade at block granularity: the trained model, the head, each of the 2 blocks, the embeddings
        assert len(r["mprt"]) == len(r["mprt_ssim"]) == 5 and r["mprt"][0] == 1.0
    assert results["random"]["mprt"] == [1.0] * 5
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["metrics"] == ["saco", "mprt"] and settings["fill"] == "road" and settings["saco_groups"] == 10
    conventions = settings["conventions"]
    assert (conventions["saco"]["name"], conventions["mprt"]["name"], conventions["method legrad"]["name"]) == (
        "paper", "quantus", "reference")
    assert "compute_SaCo.py" in conventions["saco"]["reference"]
    assert "NoisyLinearImputer" in conventions["road"]["reference"]
    table = (tmp_path / "results.md").read_text()
    assert "SaCo (paper)" in table and "(quantus)" in table


def test_the_chefer2021_preset_pins_the_papers_protocol():
    from vitviz.evidence.evaluate import apply_preset, parser

    a = parser().parse_args(["--preset", "chefer2021", "--imagenet-val", "val", "--labels", "l.txt"])
    apply_preset(a)
    assert (a.model, a.fill, a.steps) == ("google/vit-base-patch16-224", "black", 10)
    with pytest.raises(SystemExit, match="pins --fill black"):
        apply_preset(parser().parse_args(["--preset", "chefer2021", "--fill", "mean", "--imagenet-val", "v"]))
    with pytest.raises(SystemExit, match="imagenet-val"):
        apply_preset(parser().parse_args(["--preset", "chefer2021"]))
    plain = parser().parse_args([])
    apply_preset(plain)
    assert (plain.model, plain.fill, plain.steps) == ("bundled", "black", 10)
