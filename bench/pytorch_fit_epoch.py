#!/usr/bin/python3
"""Times a head-only fine-tuning epoch in PyTorch, as bench/fit_epoch_bench.cc
does in thaw: 500 examples in shuffled batches of 32 (the last one 20), Adam,
cross-entropy from logits, the backbone frozen with requires_grad=False (and
in eval mode, so that its BatchNorms use their running statistics).

 - mlp: 784-256-128-10, the first two layers frozen;
 - mobilenet: the demo's MobileNet-style network (bench/pytorch_cnn.py's,
   channels_last), the backbone frozen.

An epoch is what a PyTorch training loop does: a new permutation, then per
batch the rows gathered by index, zero_grad, forward through the whole model,
backward, step. PyTorch has no feature cache, so its one time is reported
under both thaw cases (<net>_head_only_cached and _uncached). Threads as the
other peers (bench/torch_timing.py; bench/run_fit_epoch.sh tries the splits
and sets GLIBC_TUNABLES as bench/run_cnn.sh); the faster of
zero_grad(set_to_none=True/False) counts. Prints one JSON object: name ->
median seconds per epoch.

Usage: /usr/bin/python3 bench/pytorch_fit_epoch.py TORCH_THREADS BLAS_THREADS [REPETITIONS]
"""
import json

from torch_timing import THREADS, context, median_time, torch
from pytorch_cnn import MobileNetStyle

EXAMPLES, BATCH, IN, CLASSES = 500, 32, 784, 10


def make(net):
    torch.manual_seed(0)
    if net == "mlp":
        model = torch.nn.Sequential(
            torch.nn.Linear(IN, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, CLASSES))
        frozen = (model[0], model[2])
    else:
        model = MobileNetStyle().to(memory_format=torch.channels_last)
        frozen = (model.backbone,)
    for part in frozen:
        for p in part.parameters():
            p.requires_grad_(False)
        part.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.Adam(params, lr=1e-3)


def epoch_seconds(net, x, y, loss_fn):
    best = None
    for set_to_none in (True, False):
        model, opt = make(net)

        def epoch():
            order = torch.randperm(EXAMPLES)
            for begin in range(0, EXAMPLES, BATCH):
                index = order[begin:begin + BATCH]
                opt.zero_grad(set_to_none=set_to_none)
                loss_fn(model(x[index]), y[index]).backward()
                opt.step()
        seconds = median_time(epoch)
        best = seconds if best is None else min(best, seconds)
    return best


def main():
    torch.manual_seed(3)
    loss_fn = torch.nn.CrossEntropyLoss()
    y = torch.randint(0, CLASSES, (EXAMPLES,))
    results = {}
    for net in ("mlp", "mobilenet"):
        x = (torch.rand(EXAMPLES, IN) if net == "mlp"
             else torch.rand(EXAMPLES, 1, 28, 28).contiguous(memory_format=torch.channels_last))
        seconds = epoch_seconds(net, x, y, loss_fn)
        for case in ("cached", "uncached"):
            results["fit_epoch/pytorch/%s_head_only_%s/%d" % (net, case, THREADS)] = seconds
    results["_context"] = context()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
