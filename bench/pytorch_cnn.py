#!/usr/bin/python3
"""Times the reference CNN (bench/cnn_bench.cc) in PyTorch.

conv 3x3 (1 -> 16, padding 1) ReLU, max pool 2, conv 3x3 (16 -> 32, padding
1) ReLU, max pool 2, linear 1568 -> 10, batch 32 on 28 x 28 x 1: training
steps with SGD (momentum 0.9) and Adam, all trainable or with the
convolutions frozen (requires_grad=False: head only), and inference at batch
1 and 32. PyTorch gets its best configuration: channels_last tensors, its
own (OpenMP) and OpenBLAS thread counts as given (bench/run_cnn.sh tries the
splits of the budget), the faster of zero_grad(set_to_none=True/False), and
GLIBC_TUNABLES from bench/run_cnn.sh to stop per-step mmap churn.
Prints one JSON object: name -> median seconds.

Usage: /usr/bin/python3 bench/pytorch_cnn.py TORCH_THREADS BLAS_THREADS [REPETITIONS]
"""
import json
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
BATCH, CLASSES = 32, 10


def make(head_only, adam):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(1568, CLASSES))
    model = model.to(memory_format=torch.channels_last)
    if head_only:
        for layer in (model[0], model[3]):
            for p in layer.parameters():
                p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=1e-3) if adam
           else torch.optim.SGD(params, lr=0.01, momentum=0.9))
    return model, opt


def median_time(fn, min_seconds=0.2):
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


def main():
    x = torch.rand(BATCH, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (BATCH,))
    loss_fn = torch.nn.CrossEntropyLoss()
    results = {}
    for adam in (False, True):
        for name, head_only in (("all", False), ("head_only", True)):
            key = "cnn_step/pytorch/%s_%s/%d" % (name, "adam" if adam else "sgd_momentum", THREADS)
            for set_to_none in (True, False):
                model, opt = make(head_only, adam)

                def step():
                    opt.zero_grad(set_to_none=set_to_none)
                    loss_fn(model(x), y).backward()
                    opt.step()
                seconds = median_time(step)
                results[key] = min(seconds, results.get(key, seconds))
    model, _ = make(False, False)
    for batch in (1, BATCH):
        xb = x[:batch].contiguous(memory_format=torch.channels_last)

        def infer():
            with torch.inference_mode():
                model(xb)
        results["cnn_infer/pytorch/batch%d/%d" % (batch, THREADS)] = median_time(infer)
    results["_context"] = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                           "blas_threads": BLAS_THREADS,
                           "mkldnn": torch.backends.mkldnn.is_available(),
                           "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "")}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
