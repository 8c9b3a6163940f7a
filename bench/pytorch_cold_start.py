#!/usr/bin/python3
"""PyTorch's cold start on the MLP 784-256-128-10, as bench/cold_start.cc times thaw's.

From a fresh interpreter: import torch, build the model (and for training the
Adam optimizer and the cross-entropy loss), then the first training step at
batch 32 or the first prediction (under torch.inference_mode()), a second
one, and the median of STEPS more. Prints the JSON line of bench/cold_start.cc
(CLOCK_MONOTONIC time, minor page faults and CPU time at the end of each
phase) for bench/cold_start_report.py, which subtracts the time it took just
before starting the interpreter.

Threads: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set to THREADS before
torch is imported (torch.set_num_threads does not reach OpenBLAS), and
torch.set_num_threads(THREADS) after.

Usage: /usr/bin/python3 bench/pytorch_cold_start.py train|predict BATCH THREADS [STEPS]
"""
import time

T_MAIN = time.monotonic_ns()  # the interpreter has started and read this file
CPU_MAIN = time.process_time_ns()  # CPU time of all threads since the start
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


PHASES = [["main", T_MAIN, minor_faults(), CPU_MAIN]]


def end(name):
    PHASES.append([name, time.monotonic_ns(), minor_faults(), time.process_time_ns()])


MODE, BATCH, THREADS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
STEPS = int(sys.argv[4]) if len(sys.argv) > 4 else 50
IN, CLASSES = 784, 10
os.environ["OMP_NUM_THREADS"] = str(THREADS)
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
import torch  # noqa: E402  (after the environment is set)

torch.set_num_threads(THREADS)
end("import")


def main():
    x = torch.rand(BATCH, IN)
    y = torch.randint(0, CLASSES, (BATCH,))
    end("data")
    model = torch.nn.Sequential(
        torch.nn.Linear(IN, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, CLASSES))
    end("build")
    if MODE == "train":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        end("compile")

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
    else:
        def step():
            with torch.inference_mode():
                model(x)
    step()
    end("first")
    step()
    end("second")
    times = []
    for _ in range(STEPS):
        start = time.monotonic_ns()
        step()
        times.append(time.monotonic_ns() - start)
    times.sort()
    print(json.dumps({"phases": PHASES, "steady_ns": times[len(times) // 2],
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
