#!/usr/bin/python3
"""Times the MLP 784-256-128-10 (batch 64) in PyTorch, as bench/mlp_bench.cc does in thaw.

Training steps for three freeze sets (all trainable; first layer frozen; first
two frozen, i.e. head only) with SGD (momentum 0.9) and Adam, and inference at batch 1 and 64.
PyTorch gets its best configuration: Debian's torch runs its own ops on
OpenMP threads (torch.set_num_threads, OMP_NUM_THREADS) and its matrix
products in OpenBLAS (OPENBLAS_NUM_THREADS, which set_num_threads does not
reach); both are set here, and bench/run_mlp.sh tries the splits of the
thread budget (1+1; 1+2 and 2+1) and keeps the fastest (on 2 shared cores,
2 + 2 threads oversubscribe and were 2-15x slower). Frozen parameters have
requires_grad=False; each training case is timed with zero_grad(set_to_none=True)
and with set_to_none=False (gradients zeroed in place, no allocation) and the
faster counts; inference runs under torch.inference_mode().
Set OPENBLAS_CORETYPE before running to give OpenBLAS its best kernel
(bench/run_mlp.sh does). Prints one JSON object: name -> median seconds.

Usage: /usr/bin/python3 bench/pytorch_mlp.py TORCH_THREADS BLAS_THREADS [REPETITIONS]
Results are named by the larger of the two thread counts.
"""
import json

from torch_timing import THREADS, context, infer_seconds, step_seconds, torch

BATCH, IN, CLASSES = 64, 784, 10


def make(frozen_layers, adam):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, CLASSES))
    linears = [model[0], model[2], model[4]]
    for layer in linears[:frozen_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=1e-3) if adam
           else torch.optim.SGD(params, lr=0.01, momentum=0.9))
    return model, opt


def main():
    x = torch.rand(BATCH, IN)
    y = torch.randint(0, CLASSES, (BATCH,))
    loss_fn = torch.nn.CrossEntropyLoss()
    results = {}
    for adam in (False, True):
        # The first two layers frozen is head-only training for this MLP.
        for name, frozen in (("all", 0), ("first_frozen", 1), ("head_only", 2)):
            key = "mlp_step/pytorch/%s_%s/%d" % (name, "adam" if adam else "sgd_momentum", THREADS)
            results[key] = step_seconds(lambda: make(frozen, adam), loss_fn, x, y)
    model, _ = make(0, False)
    for batch in (1, 64):
        results["mlp_infer/pytorch/batch%d/%d" % (batch, THREADS)] = infer_seconds(
            model, x[:batch].contiguous())
    results["_context"] = context()
    print(json.dumps(results))

if __name__ == "__main__":
    main()
