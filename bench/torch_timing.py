"""What bench/pytorch_mlp.py and bench/pytorch_cnn.py share: the thread
set-up from their command line, and how a step or an inference is timed.

Importing this module reads TORCH_THREADS BLAS_THREADS [REPETITIONS] from the
command line, sets OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (which must
happen before torch is imported: torch.set_num_threads does not reach
OpenBLAS) and imports torch with those threads. Results are named by the
larger of the two thread counts (THREADS).
"""
import os
import sys
import time

TORCH_THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
BLAS_THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else TORCH_THREADS
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 7
THREADS = max(TORCH_THREADS, BLAS_THREADS)
os.environ["OPENBLAS_NUM_THREADS"] = str(BLAS_THREADS)
os.environ["OMP_NUM_THREADS"] = str(TORCH_THREADS)
import torch  # noqa: E402  (after the environment is set)

torch.set_num_threads(TORCH_THREADS)


def median_time(fn, min_seconds=0.2):
    """The median over REPS repetitions of fn's mean time over >= min_seconds."""
    fn()  # warm up
    times = []
    for _ in range(REPS):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        times.append(elapsed / n)
    times.sort()
    return times[len(times) // 2]


def step_seconds(make, loss_fn, x, y):
    """One training step of the (model, optimizer) that make() returns, timed
    with gradients freed each step (PyTorch's default from 2.0) and zeroed in
    place, each on a fresh model: the faster counts."""
    best = None
    for set_to_none in (True, False):
        model, opt = make()

        def step():
            opt.zero_grad(set_to_none=set_to_none)
            loss_fn(model(x), y).backward()
            opt.step()
        seconds = median_time(step)
        best = seconds if best is None else min(best, seconds)
    return best


def infer_seconds(model, x):
    """model(x) under torch.inference_mode()."""
    def infer():
        with torch.inference_mode():
            model(x)
    return median_time(infer)


def context(**more):
    """The "_context" entry of the results: versions and thread counts."""
    c = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
         "blas_threads": BLAS_THREADS}
    c.update(more)
    c["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE", "")
    return c
