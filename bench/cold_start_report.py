#!/usr/bin/python3
"""Launches the cold-start programs many times and prints the Markdown report
(bench/run_cold_start.sh runs it; see there for what is built).

Every run is a fresh process. The launcher takes CLOCK_MONOTONIC just before
it starts the process (Python's subprocess, vfork + exec); the program prints
the same clock at the end of each of its phases (bench/cold_start.cc,
bench/pytorch_cold_start.py, bench/libtorch_cold_start.cc), so "launch ->
main" includes exec, dynamic loading, relocations and static constructors
(for Python: the interpreter's start). The runs of all configurations are
interleaved, LAUNCHES rounds of one launch each, so that drift on a shared
machine spreads over all of them; the report gives the median and the
minimum over the launches.

Usage: cold_start_report.py BUILD_DIR FIRMWARE_BIN LIBTORCH_BIN FLOORS_DIR LAUNCHES MACHINE_LINE
  BUILD_DIR     holds bench/thaw_cold_start
  FIRMWARE_BIN  thaw_cold_start built in the firmware profile
                (bench/cold_start_firmware), or ""
  LIBTORCH_BIN  bench/libtorch_cold_start.cc built, or "" when LibTorch is missing
  FLOORS_DIR    bench/cold_start_floor.cc built as empty_main, empty_main_hwy,
                empty_main_tbb and empty_main_hwy_tbb
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TASKS = (("train", 32, "train, batch 32 (Adam)"),
         ("predict", 32, "predict, batch 32"),
         ("predict", 1, "predict, batch 1"))


def configs(build, firmware, libtorch, floors):
    """(key, argv) of every run, in launch order within a round."""
    thaw = os.path.join(build, "bench", "thaw_cold_start")
    runs = []
    for mode, batch, _ in TASKS:
        task = "%s%d" % (mode, batch)
        variants = [("default", thaw, 1, []), ("prefault", thaw, 1, ["--prefault"]),
                    ("touch", thaw, 1, ["--touch"]), ("default", thaw, 2, []),
                    ("prefault", thaw, 2, ["--prefault"])]
        if mode == "train":  # an arena with room to spare: 16 MiB for 3.9 MB
            variants += [("loose", thaw, 1, ["--arena-mib", "16"]),
                         ("loose_prefault", thaw, 1, ["--arena-mib", "16", "--prefault"])]
        if firmware:
            variants += [("firmware", firmware, 1, []),
                         ("firmware_prefault", firmware, 1, ["--prefault"])]
        for variant, program, threads, flags in variants:
            runs.append(("thaw/%s/%s/%d" % (task, variant, threads),
                         [program, mode, "--batch", str(batch), "--threads", str(threads)] +
                         flags))
        runs.append(("pytorch/%s/1" % task, ["/usr/bin/python3",
                     os.path.join(HERE, "pytorch_cold_start.py"), mode, str(batch), "1"]))
        if libtorch:
            runs.append(("libtorch/%s/1" % task, [libtorch, mode, str(batch), "1"]))
    for threads in (1, 2):
        runs.append(("thaw/probe/%d" % threads,
                     [thaw, "train", "--batch", "32", "--threads", str(threads), "--probe"]))
    runs.append(("floor/thaw_cold_start", [thaw, "empty"]))
    for name in ("empty_main", "empty_main_hwy", "empty_main_tbb", "empty_main_hwy_tbb"):
        runs.append(("floor/" + name, [os.path.join(floors, name)]))
    return runs


def launch(argv, env):
    """One fresh process: {phase: (ms since launch, minor faults)}, plus extras."""
    start = time.monotonic_ns()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), done.returncode, done.stderr[-2000:]))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["start"] = start
    return result


def durations(result):
    """[(phase, ms it took, minor faults in it, CPU ms in it)], the first from
    the launch (its CPU time: since the process started)."""
    out, prev_ns, prev_faults, prev_cpu = [], result["start"], 0, 0
    for name, ns, faults, cpu_ns in result["phases"]:
        out.append((name, (ns - prev_ns) / 1e6, faults - prev_faults, (cpu_ns - prev_cpu) / 1e6))
        prev_ns, prev_faults, prev_cpu = ns, faults, cpu_ns
    return out


class Runs:
    def __init__(self, results):
        self.results = results  # key -> [result]

    def has(self, key):
        return key in self.results

    def since_launch(self, key, phase):
        return [next(ns for n, ns, _, _ in r["phases"] if n == phase) / 1e6 - r["start"] / 1e6
                for r in self.results[key]]

    def cpu_so_far(self, key, phase):
        return [next(cpu for n, _, _, cpu in r["phases"] if n == phase) / 1e6
                for r in self.results[key]]

    def phase(self, key, phase, what=1):
        return [next(d[what] for d in durations(r) if d[0] == phase) for r in self.results[key]]

    def steady(self, key):
        return [r["steady_ns"] / 1e6 for r in self.results[key]]

    def first(self, key, field):
        return self.results[key][0].get(field)


def ratios(r, task, label):
    """"label: PyTorch 119x, LibTorch 56x": the peers' median time to the end
    of the first step over thaw's (1 thread, no pre-fault)."""
    thaw = statistics.median(r.since_launch("thaw/%s/default/1" % task, "first"))
    parts = []
    for peer, name in (("pytorch", "PyTorch"), ("libtorch", "LibTorch")):
        key = "%s/%s/1" % (peer, task)
        if r.has(key):
            parts.append("%s %.0fx" % (name, statistics.median(r.since_launch(key, "first")) / thaw))
    return "%s: %s" % (label, ", ".join(parts))


def med_min(values, digits=2):
    return "%.*f (%.*f)" % (digits, statistics.median(values), digits, min(values))


def med(values, digits=2):
    return "%.*f" % (digits, statistics.median(values))


def load_average():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


LOAD_BEFORE = load_average()


def main():
    build, firmware, libtorch, floors, launches, machine = sys.argv[1:7]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    runs = configs(build, firmware, libtorch, floors)
    results = {key: [] for key, _ in runs}
    for _ in range(int(launches)):
        for key, argv in runs:
            results[key].append(launch(argv, env))
    r = Runs(results)
    torch_version = r.first("pytorch/train32/1", "torch")
    libtorch_version = (r.first("libtorch/train32/1", "torch") if r.has("libtorch/train32/1")
                        else "(not installed)")
    print("**Cold start: MLP 784-256-128-10, thaw (%s) vs PyTorch %s (Python) and LibTorch %s "
          "(C++)** — %s" % (r.first("thaw/train32/default/1", "target"), torch_version,
                            libtorch_version, machine))
    print()
    print("Milliseconds from the launch of a fresh process (median (min) of %s launches, "
          "interleaved), 1 thread unless named. *first ends*: the end of the first training step "
          "or prediction; *launch → main*: exec, dynamic loading, relocations, static "
          "constructors (PyTorch: the interpreter's start); *set-up*: main to the start of the "
          "first step (import torch, thread pool, input batch, arena, model and weight "
          "initialisation, optimizer); *steady*: the median of 50 later steps in the same "
          "process; *CPU*: CPU time of the process's threads from its start to the end of the "
          "first step (not counting time other processes held the CPU, so it varies less on a "
          "shared machine). Faults: minor page faults during the first step. Libraries and "
          "Python files are in the page cache (the first launch reads them; medians and minima "
          "do not show that one). *16 MiB arena*: thaw's training arena with room to spare "
          "(16 MiB for a 3.9 MB high-water mark), what pre-faulting costs when the arena is not "
          "sized to the plan; *firmware profile*: THAW_FIRMWARE=ON (one static Highway target, "
          "so no libhwy.so and no run-time dispatch; serial, no TBB)." % launches)
    print()
    print("| task | run | first ends | CPU to first end | launch → main | set-up | first step | "
          "second step | steady step | faults in first |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    names = [("thaw/%s/default/1", "thaw"), ("thaw/%s/prefault/1", "thaw, pre-fault"),
             ("thaw/%s/touch/1", "thaw, pages touched"), ("thaw/%s/default/2", "thaw, 2 threads"),
             ("thaw/%s/prefault/2", "thaw, 2 threads, pre-fault"),
             ("thaw/%s/loose/1", "thaw, 16 MiB arena"),
             ("thaw/%s/loose_prefault/1", "thaw, 16 MiB arena, pre-fault"),
             ("thaw/%s/firmware/1", "thaw, firmware profile"),
             ("thaw/%s/firmware_prefault/1", "thaw, firmware profile, pre-fault"),
             ("pytorch/%s/1", "PyTorch"), ("libtorch/%s/1", "LibTorch")]
    for mode, batch, label in TASKS:
        task = "%s%d" % (mode, batch)
        for pattern, run in names:
            key = pattern % task
            if not r.has(key):
                continue
            first = r.since_launch(key, "first")
            main_ms = r.since_launch(key, "main")
            setup = [f - m - s for f, m, s in zip(first, main_ms, r.phase(key, "first"))]
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label, run, med_min(first), med_min(r.cpu_so_far(key, "first")), med_min(main_ms),
                med(setup), med(r.phase(key, "first")),
                med(r.phase(key, "second"), 3), med(r.steady(key), 3),
                med(r.phase(key, "first", 2), 0)))
    print()
    print("Ratios of the medians of *first ends* (peer / thaw, 1 thread, no pre-fault): " +
          "; ".join(ratios(r, "%s%d" % (m, b), label) for m, b, label in TASKS) + ".")
    print()

    # Where thaw's time goes: every phase of the training run.
    print("thaw's phases, train at batch 32: median ms of the clock / of CPU time, [minor "
          "faults]:")
    print()
    variants = [v for v in (("default", "1"), ("prefault", "1"), ("touch", "1"),
                            ("default", "2"), ("prefault", "2"), ("loose_prefault", "1"),
                            ("firmware", "1"))
                if r.has("thaw/train32/%s/%s" % v)]
    names = {"loose_prefault": "16 MiB pre-fault"}
    print("| phase | " + " | ".join("%s, %s t" % (names.get(v[0], v[0]), v[1]) for v in variants)
          + " |")
    print("|---|" + "--:|" * len(variants))
    phases = [d[0] for d in durations(results["thaw/train32/default/1"][0])]
    for phase in phases:
        cells = ["%s / %s [%s]" % (med(r.phase("thaw/train32/%s/%s" % v, phase), 3),
                                   med(r.phase("thaw/train32/%s/%s" % v, phase, 3), 3),
                                   med(r.phase("thaw/train32/%s/%s" % v, phase, 2), 0))
                 for v in variants]
        print("| %s | %s |" % ("launch → main" if phase == "main" else phase, " | ".join(cells)))
    print()
    print("Probe runs (`--probe`, train at batch 32; median ms of the clock): the first SIMD "
          "dispatch (Highway's CPU detection) %s ms with 1 thread; the pool %s / %s ms and its "
          "first ParallelFor %s / %s ms with 1 / 2 threads (TBB creates its arena in the pool's "
          "constructor and starts its worker threads on the first parallel call)." % (
              med(r.phase("thaw/probe/1", "dispatch"), 3), med(r.phase("thaw/probe/1", "pool"), 3),
              med(r.phase("thaw/probe/2", "pool"), 3), med(r.phase("thaw/probe/1", "tbb"), 3),
              med(r.phase("thaw/probe/2", "tbb"), 3)))
    print()
    print("Launch → main, median (min) ms of the clock / median of CPU time: "
          + "; ".join("%s %s / %s" % (label, med_min(r.phase("floor/" + key, "main")),
                                      med(r.cpu_so_far("floor/" + key, "main")))
                      for key, label in (
                          ("empty_main", "a C++ program that does nothing (libstdc++ only)"),
                          ("empty_main_hwy", "the same linked to libhwy"),
                          ("empty_main_tbb", "to libtbb"),
                          ("empty_main_hwy_tbb", "to both"),
                          ("thaw_cold_start", "thaw_cold_start"))) + ".")
    print()
    print("thaw's arena: %s bytes for training (high-water mark %s), %s for prediction (%s at "
          "batch 32); PyTorch and LibTorch allocate as they go." % (
              r.first("thaw/train32/default/1", "arena_bytes"),
              r.first("thaw/train32/default/1", "high_water"),
              r.first("thaw/predict32/default/1", "arena_bytes"),
              r.first("thaw/predict32/default/1", "high_water")))
    print()
    print("Load average before / after the runs: %s / %s (a shared machine: the minimum is the "
          "run least disturbed by others). Made by `bench/run_cold_start.sh` (LAUNCHES=%s)."
          % (LOAD_BEFORE, load_average(), launches))


if __name__ == "__main__":
    main()
