#!/usr/bin/python3
"""Writes tests/fixtures/graph_agreement.txt: models that are not chains.

"residual": x[12] -> dense_0 (16, relu) = h -> dense_1 (16, relu) = g ->
h + g -> head (3 logits), the skip connection of a residual block.
"branches": x[12] -> dense_0 (8, tanh) = h -> dense_1 (6, relu) and
dense_2 (5, sigmoid) side by side -> concatenated [11] -> head (3 logits).

Each is trained on one fixed batch of 8 examples with cross-entropy, with
dense_0 frozen (requires_grad=False) for 5 steps, then thawed for 5 more,
under SGD (momentum, weight decay) and under Adam.

"batchnorm": x[12] -> dense_0 (16, no bias: a bias before a BatchNorm gets a
gradient that is zero but for rounding, which Adam would blow up to full
steps of noise) -> BatchNorm1d (eps 1e-3, momentum 0.1,
Keras' 0.9) -> relu -> head (3), with Keras' freeze semantics: 4 steps all
trainable, 4 with dense_0 and the BatchNorm frozen (requires_grad=False and
the BatchNorm in eval mode: moving statistics, no updates), 4 thawed. The
running statistics are recorded after every step too. thaw keeps no
optimizer state for a frozen variable, so one thawed again starts from zero
state, as a parameter that gets its first gradient; PyTorch would keep the
stale momentum, so the script drops it at the thaw. The fixture holds the data,
the initial weights, and the loss and every weight after each step;
tests/functional_test.cc replays the runs with thaw's functional models.

Run with Debian's python3-torch (the system Python):
    /usr/bin/python3 tests/pytorch/graph_agreement.py
Only this script writes the fixture.
"""
import os
import sys

import torch

from agreement import freeze_then_thaw, line

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "graph_agreement.txt")


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense_0 = torch.nn.Linear(12, 16)
        self.dense_1 = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.dense_0(x))
        g = torch.relu(self.dense_1(h))
        return self.head(h + g)


class Branches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense_0 = torch.nn.Linear(12, 8)
        self.dense_1 = torch.nn.Linear(8, 6)
        self.dense_2 = torch.nn.Linear(8, 5)
        self.head = torch.nn.Linear(11, 3)

    def forward(self, x):
        h = torch.tanh(self.dense_0(x))
        a = torch.relu(self.dense_1(h))
        b = torch.sigmoid(self.dense_2(h))
        return self.head(torch.cat([a, b], dim=1))


class Normalized(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense_0 = torch.nn.Linear(12, 16, bias=False)
        self.batch_normalization_0 = torch.nn.BatchNorm1d(16, eps=1e-3, momentum=0.1)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.relu(self.batch_normalization_0(self.dense_0(x))))


def frozen_between(label, model, frozen_modules, steps, window, make_optimizer, x, y, out):
    """Trains `model` on (x, y) with cross-entropy for `steps` steps, with
    frozen_modules frozen for the steps in [window[0], window[1]) as Keras
    freezes them: their parameters requires_grad=False and the modules in eval
    mode (a BatchNorm then uses and keeps its running statistics). At the thaw
    their optimizer state is dropped (thaw keeps none for a frozen variable).
    Appends the initial tensors and, after each step, the loss and every
    tensor to `out`."""
    for name, t in model.state_dict().items():
        out.append(line("%s/initial/%s" % (label, name), t))
    frozen = [p for m in frozen_modules for p in m.parameters()]
    opt = make_optimizer(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(steps):
        freeze = window[0] <= step < window[1]
        for p in frozen:
            p.requires_grad_(not freeze)
            if step == window[1]:
                opt.state.pop(p, None)
        model.train()
        if freeze:
            for m in frozen_modules:
                m.eval()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        out.append(line("%s/step%d/loss" % (label, step), loss.detach().reshape(1)))
        for name, t in model.state_dict().items():
            out.append(line("%s/step%d/%s" % (label, step, name), t))


def run_batchnorm(label, make_optimizer, x, y, out):
    torch.manual_seed(5)
    model = Normalized()
    with torch.no_grad():  # not the trivial initial statistics
        model.batch_normalization_0.weight.uniform_(0.5, 1.5)
        model.batch_normalization_0.bias.uniform_(-0.5, 0.5)
    frozen_between(label, model, [model.dense_0, model.batch_normalization_0], 12, (4, 8),
                   make_optimizer, x, y, out)


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        bn = lambda c: torch.nn.BatchNorm2d(c, eps=1e-3, momentum=0.1)
        self.conv2d_0 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.batch_normalization_0 = bn(8)
        self.depthwise_conv2d_0 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.batch_normalization_1 = bn(8)
        self.conv2d_1 = torch.nn.Conv2d(8, 8, 1, bias=False)
        self.batch_normalization_2 = bn(8)
        self.head = torch.nn.Linear(8, 3)

    def backbone(self):
        return [m for name, m in self.named_children() if name != "head"]

    def forward(self, x):
        a = torch.nn.functional.relu6(self.batch_normalization_0(self.conv2d_0(x)))
        b = torch.nn.functional.relu6(self.batch_normalization_1(self.depthwise_conv2d_0(a)))
        c = self.batch_normalization_2(self.conv2d_1(b))
        p = torch.nn.functional.max_pool2d(a + c, 2)
        return self.head(p.mean(dim=(2, 3)))


def run_cnn(label, make_optimizer, x, y, out):
    torch.manual_seed(6)
    model = Cnn()
    with torch.no_grad():
        for m in model.backbone():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    frozen_between(label, model, model.backbone(), 9, (3, 6), make_optimizer, x, y, out)


def run(label, model_class, make_optimizer, x, y, out):
    torch.manual_seed(3)
    model = model_class()
    freeze_then_thaw(label, model, lambda m: m.state_dict(), list(model.dense_0.parameters()),
                     make_optimizer, x, y, out)


def main():
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(8, 12, generator=generator)
    y = torch.randint(0, 3, (8,), generator=generator)
    out = [line("x", x), line("labels", y.to(torch.float32))]
    sgd = lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)
    adam = lambda params: torch.optim.Adam(params, lr=0.01)
    for model_label, model_class in (("residual", Residual), ("branches", Branches)):
        run(model_label + "/sgd", model_class, sgd, x, y, out)
        run(model_label + "/adam", model_class, adam, x, y, out)
    run_batchnorm("batchnorm/sgd", sgd, x, y, out)
    run_batchnorm("batchnorm/adam", adam, x, y, out)
    images = torch.randn(4, 3, 9, 9, generator=generator)
    classes = torch.randint(0, 3, (4,), generator=generator)
    out += [line("cnn_x", images.permute(0, 2, 3, 1).contiguous()),
            line("cnn_labels", classes.to(torch.float32))]
    run_cnn("cnn/sgd", sgd, images, classes, out)
    run_cnn("cnn/adam", adam, images, classes, out)
    with open(OUT, "w") as f:
        f.write("# written by tests/pytorch/graph_agreement.py with torch %s\n" % torch.__version__)
        f.writelines(out)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    sys.exit(main())
