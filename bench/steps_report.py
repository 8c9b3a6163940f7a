#!/usr/bin/python3
"""The Markdown table of whole training and inference steps, thaw against
PyTorch, from the rounds of a bench/run_mlp.sh or bench/run_cnn.sh run.

OUT holds, per round r, thaw_<r>.json (Google Benchmark JSON with
aggregates) and torch_<r>_<split>.json (the bench/pytorch_*.py output for
one split of the thread budget; the fastest split counts per case). Each
ROW is "op:case:label" for the cases <op>/<thaw|pytorch>/<case>/<threads>.
Times are medians over rounds; ratios are taken within a round, and the
table shows their median and range.

Usage: steps_report.py OUT TITLE OPENBLAS_CORETYPE CORES SCRIPT ROW...
"""
import glob
import json
import os
import statistics
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(out):
    thaw, torch, version, probe, run = [], [], "", [], None
    for path in sorted(glob.glob(os.path.join(out, "thaw_*.json"))):
        run = json.load(open(path))
        medians = [b for b in run["benchmarks"] if b.get("aggregate_name") == "median"]
        thaw.append({b["run_name"].replace("/real_time", "").replace("/manual_time", ""):
                     b["real_time"] * UNIT[b["time_unit"]]
                     for b in medians})
        probe.append(next(((b["own_us"], b["other_us"]) for b in medians if "own_us" in b), None))
        best = {}  # the fastest thread split per case
        for split in glob.glob(path.replace("thaw_", "torch_").replace(".json", "_*.json")):
            for k, v in json.load(open(split)).items():
                if k == "_context":
                    version = v.get("torch", "")
                elif not k.startswith("_"):
                    best[k] = min(v, best.get(k, v))
        torch.append(best)
    return thaw, torch, version, probe, run["context"]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ms(x):
    return "%.3f ms" % (1e3 * x) if x else "-"


def ratio(pairs):
    values = sorted(a / b for a, b in pairs if a and b)
    if not values:
        return "-"
    text = "%.2fx" % statistics.median(values)
    return text + (" (%.2f-%.2f)" % (values[0], values[-1]) if len(values) > 1 else "")


def main():
    out, title, coretype, cores, script = sys.argv[1:6]
    rows = [r.split(":", 2) for r in sys.argv[6:]]
    thaw, torch, version, probe, ctx = load(out)
    print("**%s, thaw vs PyTorch %s** — %s CPUs @ %.0f MHz, thaw: %s, OpenBLAS: %s kernels, %s"
          % (title, version, cores, ctx.get("mhz_per_cpu", 0), ctx.get("thaw_target", "?"),
             coretype or "auto", ctx.get("date", "")[:10]))
    print()
    print("| step | thaw 1t | PyTorch 1t | PyTorch / thaw | thaw 2t | PyTorch 2t | PyTorch / thaw "
          "| thaw 2t/1t |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for op, case, label in rows:
        cells = [label]
        for t in ("1", "2"):
            mine, peer = "%s/thaw/%s/%s" % (op, case, t), "%s/pytorch/%s/%s" % (op, case, t)
            cells += [ms(median(m.get(mine) for m in thaw)), ms(median(p.get(peer) for p in torch)),
                      ratio([(p.get(peer), m.get(mine)) for m, p in zip(thaw, torch)])]
        one, two = "%s/thaw/%s/1" % (op, case), "%s/thaw/%s/2" % (op, case)
        cells.append(ratio([(m.get(one), m.get(two)) for m in thaw]).rstrip("x")
                     .replace("x (", " ("))
        print("| " + " | ".join(cells) + " |")
    print()
    if probe and all(probe):
        print("Cross-core probe per round (reading 2400 KiB that this core / the other core wrote "
              "last; the 2-thread steps pay the difference where a phase reads what the other "
              "thread wrote): " + ", ".join("%.0f / %.0f us" % p for p in probe) + ".")
        print()
    print("Times: medians over %d rounds of the medians of 5 interleaved repetitions; ratios: the "
          "median (and range) of the per-round ratios (`%s`). PyTorch: the fastest split of each "
          "thread budget between its OpenMP threads and OpenBLAS's (1+1, 1+2, 2+1), the faster of "
          "zero_grad set_to_none True or False, frozen layers with requires_grad=False, inference "
          "under inference_mode." % (len(thaw), script))


if __name__ == "__main__":
    main()
