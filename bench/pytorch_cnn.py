#!/usr/bin/python3
"""Times the CNNs of bench/cnn_bench.cc in PyTorch: the reference CNN and the
demo's MobileNet-style network (examples/mobilenet_style.h).

conv 3x3 (1 -> 16, padding 1) ReLU, max pool 2, conv 3x3 (16 -> 32, padding
1) ReLU, max pool 2, linear 1568 -> 10, batch 32 on 28 x 28 x 1: training
steps with SGD (momentum 0.9) and Adam, all trainable or with the
convolutions frozen (requires_grad=False: head only), and inference at batch
1 and 32. The MobileNet-style network (BatchNorm momentum 0.1, convolutions
without bias), the same cases, head_only freezing the backbone with its
BatchNorms in eval mode (what thaw's frozen BatchNorms do). PyTorch gets its best configuration: channels_last tensors, its
own (OpenMP) and OpenBLAS thread counts as given (bench/run_cnn.sh tries the
splits of the budget), the faster of zero_grad(set_to_none=True/False), and
GLIBC_TUNABLES from bench/run_cnn.sh to stop per-step mmap churn.
Prints one JSON object: name -> median seconds.

Usage: /usr/bin/python3 bench/pytorch_cnn.py TORCH_THREADS BLAS_THREADS [REPETITIONS]
"""
import json

from torch_timing import THREADS, context, infer_seconds, step_seconds, torch

BATCH, CLASSES = 32, 10


def conv_bn(cin, cout, kernel, stride=1, groups=1, relu6=True):
    layers = [torch.nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups,
                              bias=False),
              torch.nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)]
    return layers + ([torch.nn.ReLU6()] if relu6 else [])


class InvertedResidual(torch.nn.Module):
    def __init__(self, channels, expanded):
        super().__init__()
        self.body = torch.nn.Sequential(*conv_bn(channels, expanded, 1),
                                        *conv_bn(expanded, expanded, 3, groups=expanded),
                                        *conv_bn(expanded, channels, 1, relu6=False))

    def forward(self, x):
        return x + self.body(x)


class MobileNetStyle(torch.nn.Module):
    """examples/mobilenet_style.h. Padding 1 for the stride-2 3x3 convolutions
    equals TensorFlow's "same" on even sizes but for its side (one pixel on
    each side here, all on the bottom/right there): the same work."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(
            *conv_bn(1, 16, 3, stride=2),
            *conv_bn(16, 16, 3, groups=16), *conv_bn(16, 32, 1),
            *conv_bn(32, 32, 3, stride=2, groups=32), *conv_bn(32, 48, 1),
            InvertedResidual(48, 96))
        self.head = torch.nn.Linear(48, CLASSES)

    def forward(self, x):
        return self.head(self.backbone(x).mean(dim=(2, 3)))


def reference():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(1568, CLASSES))


def make(net, head_only, adam):
    torch.manual_seed(0)
    model = (reference() if net == "cnn" else MobileNetStyle())
    model = model.to(memory_format=torch.channels_last)
    if head_only:
        frozen = (model[0], model[3]) if net == "cnn" else (model.backbone,)
        for part in frozen:
            for p in part.parameters():
                p.requires_grad_(False)
            part.eval()  # frozen BatchNorms use their running statistics
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=1e-3) if adam
           else torch.optim.SGD(params, lr=0.01, momentum=0.9))
    return model, opt


def main():
    x = torch.rand(BATCH, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (BATCH,))
    loss_fn = torch.nn.CrossEntropyLoss()
    results = {}
    for net in ("cnn", "mobilenet"):
        for adam in (False, True):
            for name, head_only in (("all", False), ("head_only", True)):
                key = "%s_step/pytorch/%s_%s/%d" % (net, name, "adam" if adam else "sgd_momentum",
                                                    THREADS)
                results[key] = step_seconds(lambda: make(net, head_only, adam), loss_fn, x, y)
        model, _ = make(net, False, False)
        model.eval()
        for batch in (1, BATCH):
            xb = x[:batch].contiguous(memory_format=torch.channels_last)
            results["%s_infer/pytorch/batch%d/%d" % (net, batch, THREADS)] = infer_seconds(model, xb)
    results["_context"] = context(mkldnn=torch.backends.mkldnn.is_available())
    print(json.dumps(results))


if __name__ == "__main__":
    main()
