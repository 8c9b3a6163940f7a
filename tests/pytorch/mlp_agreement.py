#!/usr/bin/python3
"""Writes tests/fixtures/mlp_agreement.txt: a 20-16-8-3 MLP trained by PyTorch.

For each optimizer (SGD with momentum and weight decay; Adam), the first layer
is frozen (requires_grad=False) for 5 steps, then unfrozen for 5 more, all on
one fixed batch of 8 examples. The fixture holds the data, the initial weights,
and the loss and every weight after each step; tests/model_agreement_test.cc
replays the same run in thaw and compares.

Run with Debian's python3-torch (the system Python):
    /usr/bin/python3 tests/pytorch/mlp_agreement.py
Only this script writes the fixture.
"""
import os
import sys

import torch

from agreement import freeze_then_thaw, line

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "mlp_agreement.txt")
NAMES = ["dense_0.weight", "dense_0.bias", "dense_1.weight", "dense_1.bias",
         "dense_2.weight", "dense_2.bias"]


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(20, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 8), torch.nn.ReLU(),
        torch.nn.Linear(8, 3))


def tensors(model):
    return dict(zip(NAMES, [p.detach().clone() for p in model.parameters()]))


def run(label, make_optimizer, x, y, out, clip=None):
    model = make_model()
    freeze_then_thaw(label, model, tensors, list(model[0].parameters()), make_optimizer, x, y,
                     out, clip)


def clip_each(max_norm):
    """Keras' clipnorm as thaw computes it: clip_grad_norm_ on each parameter alone."""
    def clip(params):
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], max_norm)
    return clip


def run_layers(label, last, loss_fn, make_optimizer, x, target, out):
    """6 -> tanh 5 -> sigmoid 4 -> 3 (`last`), 4 steps; every layer trainable."""
    torch.manual_seed(2)
    layers = [torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4),
              torch.nn.Sigmoid(), torch.nn.Linear(4, 3)]
    if last is not None:
        layers.append(last)
    model = torch.nn.Sequential(*layers)
    names = ["dense_0.weight", "dense_0.bias", "dense_1.weight", "dense_1.bias",
             "dense_2.weight", "dense_2.bias"]
    for name, p in zip(names, model.parameters()):
        out.append(line("%s/initial/%s" % (label, name), p.detach()))
    opt = make_optimizer(model.parameters())
    for step in range(4):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        out.append(line("%s/step%d/loss" % (label, step), loss.detach().reshape(1)))
        for name, p in zip(names, model.parameters()):
            out.append(line("%s/step%d/%s" % (label, step, name), p.detach()))


def main():
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(8, 20, generator=generator)
    y = torch.randint(0, 3, (8,), generator=generator)
    out = [line("x", x), line("labels", y.to(torch.float32))]
    run("sgd", lambda params: torch.optim.SGD(
        params, lr=0.1, momentum=0.9, weight_decay=0.01), x, y, out)
    run("adam", lambda params: torch.optim.Adam(params, lr=0.01), x, y, out)
    # Other layers and losses: tanh, sigmoid, a softmax layer; MSE, BCE, CE.
    x6 = torch.randn(5, 6, generator=generator)
    soft_targets = torch.rand(5, 3, generator=generator)
    classes = torch.randint(0, 3, (5,), generator=generator)
    out += [line("x6", x6), line("soft_targets", soft_targets),
            line("classes", classes.to(torch.float32))]
    run_layers("mse", None, torch.nn.MSELoss(),
               lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.5, nesterov=True),
               x6, soft_targets, out)
    run_layers("bce", None, torch.nn.BCEWithLogitsLoss(),
               lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
               x6, soft_targets, out)
    # A softmax layer then the negative log-likelihood: Keras's
    # sparse_categorical_crossentropy on probabilities.
    run_layers("softmax", torch.nn.Softmax(dim=1),
               lambda probs, t: torch.nn.functional.nll_loss(torch.log(probs), t),
               lambda p: torch.optim.Adam(p, lr=0.05), x6, classes, out)
    # Gradient clipping through the freeze and thaw: global norm (Adam),
    # per-variable norm and per-element value (SGD). The limits are below the
    # gradients' norms and values, so every step clips.
    run("clip_global", lambda p: torch.optim.Adam(p, lr=0.01), x, y, out,
        lambda params: torch.nn.utils.clip_grad_norm_(params, 0.05))
    run("clip_each", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), x, y, out,
        clip_each(0.02))
    run("clip_value", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
        x, y, out, lambda params: torch.nn.utils.clip_grad_value_(params, 0.01))
    with open(OUT, "w") as f:
        f.write("# written by tests/pytorch/mlp_agreement.py with torch %s\n" % torch.__version__)
        f.writelines(out)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    sys.exit(main())
