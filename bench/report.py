#!/usr/bin/python3
"""Turns the Google Benchmark JSON files of a bench/run_gemm.sh run into a
Markdown table and a PNG plot of thaw's GEMM against OpenBLAS.

Reads the cases gemm/<thaw|openblas>/<shape>/<threads> and fma_probe/... (see
bench/gemm_bench.cc), takes each case's median over repetitions and its FLOP/s
counter, and reports per shape: GFLOP/s of thaw and OpenBLAS on 1 and 2
threads, thaw / OpenBLAS, thaw's share of the FMA probe's peak and thaw's
2-thread speedup. A case missing from the files (no OpenBLAS build, no
2-thread pass, no probe) leaves a "-" in its cell.

Usage: /usr/bin/python3 bench/report.py [--markdown OUT.md] [--plot OUT.png] JSON...
  The Markdown always goes to stdout; --markdown also writes it to a file.
  --plot needs matplotlib (Debian: python3-matplotlib); without it the plot is
  skipped with a message on stderr and the exit status stays 0.
"""
import argparse
import json
import os
import re
import statistics
import sys

KIND_ORDER = ("fwd", "dx", "dw")
KIND_NAMES = {"fwd": "forward", "dx": "input grad", "dw": "weight grad"}


class Shape:
    """One GEMM case name such as 64x256x784_nt_fwd, parsed.

    kind is None for a square, "fwd" / "dx" / "dw" for a dense-layer product
    (bench/gemm_bench.cc: fwd m=b n=out k=in, dx m=b n=in k=out, dw m=out
    n=in k=b), or "?" for a name this script does not know.
    """

    def __init__(self, name):
        self.name = name
        m = re.match(r"(\d+)x(\d+)x(\d+)(?:_[nt]{2})?(?:_(fwd|dx|dw))?$", name)
        if not m:
            self.m = self.n = self.k = None
            self.batch = self.layer_in = self.layer_out = None
            self.kind = "?"
            return
        self.m, self.n, self.k = (int(m.group(i)) for i in (1, 2, 3))
        self.kind = m.group(4)
        if self.kind is None and not self.m == self.n == self.k:
            self.kind = "?"
        self.batch, self.layer_in, self.layer_out = {
            None: (None, None, None), "?": (None, None, None),
            "fwd": (self.m, self.k, self.n),
            "dx": (self.m, self.n, self.k),
            "dw": (self.k, self.n, self.m)}[self.kind]

    def order(self):
        """Squares by size, then per batch the layers from the input side,
        each as forward, input gradient, weight gradient; unknown names last."""
        if self.kind is None:
            return (0, self.m, 0, 0, "")
        if self.kind == "?":
            return (2, 0, 0, 0, self.name)
        return (1, self.batch, -self.layer_in, KIND_ORDER.index(self.kind), "")

    def dims(self):
        if self.m is None:
            return self.name
        return "%d×%d×%d" % (self.m, self.n, self.k)

    def what(self):
        if self.kind is None:
            return "square"
        if self.kind == "?":
            return "-"
        return "%s %d→%d, b=%d" % (KIND_NAMES[self.kind], self.layer_in,
                                   self.layer_out, self.batch)


class Results:
    """GFLOP/s per case (name without /real_time) and the run's context."""

    def __init__(self, paths):
        self.contexts = []
        self.rate = {}
        medians, samples = {}, {}
        for path in paths:
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                sys.exit("report.py: cannot read %s: %s" % (path, e))
            self.contexts.append(data.get("context", {}))
            for b in data.get("benchmarks", []):
                if b.get("error_occurred") or "FLOP/s" not in b:
                    continue
                name = re.sub(r"/real_time$", "", b.get("run_name", b["name"]))
                if b.get("run_type") == "aggregate":
                    if b.get("aggregate_name") == "median":
                        medians[name] = b["FLOP/s"] / 1e9
                else:
                    samples.setdefault(name, []).append(b["FLOP/s"] / 1e9)
        # A run with one repetition has no aggregates: its median is the
        # median of the repetitions it does have.
        for name, values in samples.items():
            self.rate[name] = statistics.median(values)
        self.rate.update(medians)
        self.peak = next((v for k, v in sorted(self.rate.items())
                          if k.startswith("fma_probe/") and k.endswith("/1")),
                         None)
        names = set()
        for name in self.rate:
            m = re.match(r"gemm/[^/]+/([^/]+)/\d+$", name)
            if m:
                names.add(m.group(1))
        self.shapes = sorted((Shape(s) for s in names), key=Shape.order)

    def get(self, impl, shape, threads):
        return self.rate.get("gemm/%s/%s/%d" % (impl, shape.name, threads))

    def context(self, key):
        """The first pass's value of a context key, or None."""
        return next((c[key] for c in self.contexts if key in c), None)

    def machine(self):
        """One line naming the machine and the libraries' choices; leaves out
        what the files do not say."""
        parts = []
        cpus, mhz = self.context("num_cpus"), self.context("mhz_per_cpu")
        if cpus is not None:
            parts.append("%s CPUs" % cpus + (" @ %s MHz" % mhz if mhz else ""))
        if self.context("thaw_target"):
            parts.append("thaw: %s" % self.context("thaw_target"))
        if self.context("openblas_core"):
            parts.append("OpenBLAS: %s kernels" % self.context("openblas_core"))
        if self.peak:
            parts.append("FMA probe: %.1f GFLOP/s per core" % self.peak)
        if self.context("date"):
            parts.append(self.context("date")[:10])
        return ", ".join(parts) or "machine unknown"


def fmt(value, pattern):
    return "-" if value is None else pattern % value


def divide(a, b):
    return a / b if a is not None and b else None


def percent(a, b):
    share = divide(a, b)
    return None if share is None else 100 * share


def markdown(res):
    lines = ["**GEMM, thaw vs OpenBLAS** (GFLOP/s) — " + res.machine(), ""]
    lines.append("| shape m×n×k | what | thaw 1t | OpenBLAS 1t | ratio | %peak "
                 "| thaw 2t | OpenBLAS 2t | ratio | thaw 2t/1t |")
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for s in res.shapes:
        t1, o1 = res.get("thaw", s, 1), res.get("openblas", s, 1)
        t2, o2 = res.get("thaw", s, 2), res.get("openblas", s, 2)
        lines.append("| %s |" % " | ".join([
            s.dims(), s.what(),
            fmt(t1, "%.1f"), fmt(o1, "%.1f"), fmt(divide(t1, o1), "%.2f"),
            fmt(percent(t1, res.peak), "%.0f%%"),
            fmt(t2, "%.1f"), fmt(o2, "%.1f"), fmt(divide(t2, o2), "%.2f"),
            fmt(divide(t2, t1), "%.2f")]))
    notes = ["Medians of repetitions; ratio = thaw / OpenBLAS (bench/run_gemm.sh "
             "runs each library's 2-thread cases in a pass of their own); %peak = "
             "thaw 1t / 1-thread FMA probe. Dense-layer products of the MLP "
             "784-256-128-10 and of the reference CNN's head 1568→10 at batch b: "
             "forward Y = X·Wᵀ, input grad dX = dY·W, weight grad dW += dYᵀ·X."]
    if res.context("openblas_config"):
        notes.append("OpenBLAS build: %s." % res.context("openblas_config"))
    loads = [" ".join("%.2f" % x for x in c["load_avg"])
             for c in res.contexts if c.get("load_avg")]
    if loads:
        notes.append("Load average at the start of each pass: %s." % " | ".join(loads))
    lines += ["", " ".join(notes)]
    return "\n".join(lines) + "\n"


def plot(res, path):
    """Writes the PNG; returns why it could not, or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return ("matplotlib is not available to %s (%s); on Debian install "
                "python3-matplotlib (.ci/deps python3-matplotlib)"
                % (sys.executable, e))
    colors = {"thaw": "#1f77b4", "openblas": "#ff7f0e"}
    labels = {"thaw": "thaw", "openblas": "OpenBLAS"}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8))
    fig.suptitle("SGEMM, thaw vs OpenBLAS\n" + res.machine(), fontsize=10)

    def peak_line(ax, factor, text):
        ax.axhline(res.peak * factor, color="gray", linestyle=":", linewidth=1)
        ax.annotate(text, (1, res.peak * factor),
                    xycoords=("axes fraction", "data"), xytext=(-4, 3),
                    textcoords="offset points", ha="right", fontsize=8,
                    color="gray")

    squares = [s for s in res.shapes if s.kind is None]
    for impl in ("thaw", "openblas"):
        for threads, style, marker in ((1, "-", "o"), (2, "--", "s")):
            points = [(s.m, res.get(impl, s, threads)) for s in squares]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                top.plot(*zip(*points), linestyle=style, marker=marker,
                         color=colors[impl], markersize=5,
                         label="%s, %d thread%s" % (labels[impl], threads,
                                                    "s" if threads > 1 else ""))
    if res.peak:
        peak_line(top, 1, "FMA probe peak, 1 core")
        peak_line(top, 2, "2 × FMA probe peak")
    sizes = [32, 64, 128, 256, 512, 1024]
    top.set_xscale("log", base=2)
    top.set_xticks(sizes)
    top.set_xticklabels([str(n) for n in sizes])
    top.set_xlim(28, 1170)
    top.set_ylim(0, max([2.2 * (res.peak or 0)] + [
        y * 1.1 for line in top.get_lines() for y in line.get_ydata()]))
    top.set_xlabel("square matrices, m = n = k")
    top.set_ylabel("GFLOP/s")
    top.grid(True, alpha=0.3)
    if top.get_lines():
        top.legend(fontsize=8, loc="lower right", ncol=2)

    # Dense-layer products in groups of (batch, layer): forward, input grad,
    # weight grad side by side, each a pair of bars thaw | OpenBLAS.
    dense = [s for s in res.shapes if s.kind not in (None, "?")]
    if not dense:
        bottom.set_axis_off()
    else:
        width, xs, groups, x = 0.38, [], [], 0.0
        for i, s in enumerate(dense):
            key = (s.batch, s.layer_in, s.layer_out)
            if i and key != groups[-1][0]:
                x += 0.6  # a gap between groups
            if not groups or key != groups[-1][0]:
                groups.append((key, []))
            groups[-1][1].append(x)
            xs.append(x)
            x += 1
        for offset, impl in ((-width / 2, "thaw"), (width / 2, "openblas")):
            ys = [res.get(impl, s, 1) or 0 for s in dense]
            if not any(ys):
                continue
            bottom.bar([x + offset for x in xs], ys, width, color=colors[impl],
                       label="%s, 1 thread" % labels[impl])
        tallest = 0
        for x, s in zip(xs, dense):
            t1, o1 = res.get("thaw", s, 1), res.get("openblas", s, 1)
            tallest = max(tallest, t1 or 0, o1 or 0)
            ratio = divide(t1, o1)
            if ratio is not None:
                bottom.annotate("%.2f" % ratio, (x, max(t1, o1)),
                                xytext=(0, 2), textcoords="offset points",
                                ha="center", fontsize=7)
        if res.peak:
            peak_line(bottom, 1, "FMA probe peak, 1 core")
        bottom.set_xticks(xs)
        bottom.set_xticklabels([s.kind for s in dense], fontsize=8)
        for (batch, layer_in, layer_out), members in groups:
            bottom.annotate("%d→%d, b=%d" % (layer_in, layer_out, batch),
                            ((members[0] + members[-1]) / 2, 0),
                            xycoords=("data", "axes fraction"),
                            xytext=(0, -24), textcoords="offset points",
                            ha="center", va="top", fontsize=8)
        bottom.set_xlim(xs[0] - 0.7, xs[-1] + 0.7)
        bottom.set_ylim(0, 1.25 * max(tallest, res.peak or 0))
        bottom.set_ylabel("GFLOP/s")
        bottom.set_title("dense-layer products of the MLP 784-256-128-10 and the "
                         "CNN's head at batch b, 1 thread (numbers: thaw / OpenBLAS)",
                         fontsize=9)
        bottom.grid(True, axis="y", alpha=0.3)
        bottom.legend(fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    out_dir = os.path.dirname(path)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def main():
    parser = argparse.ArgumentParser(
        description="Markdown table and PNG plot from bench/run_gemm.sh's "
                    "Google Benchmark JSON files.")
    parser.add_argument("json", nargs="+", help="Google Benchmark JSON output")
    parser.add_argument("--markdown", metavar="OUT.md",
                        help="also write the Markdown table to this file")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="write the plot (needs matplotlib)")
    args = parser.parse_args()

    res = Results(args.json)
    if not res.shapes:
        sys.exit("report.py: no gemm/... cases in %s" % " ".join(args.json))
    text = markdown(res)
    sys.stdout.write(text)
    if args.markdown:
        out_dir = os.path.dirname(args.markdown)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.plot:
        why_not = plot(res, args.plot)
        if why_not:
            print("report.py: no plot written: " + why_not, file=sys.stderr)


if __name__ == "__main__":
    main()
