"""What the agreement scripts share: the fixture's line format and the
freeze-then-thaw training run that thaw's tests replay.

A fixture line is "<name> <count> <values...>", values as %.9e (enough digits
to round-trip a float32); tests/agreement_util.h reads them.
"""
import torch

STEPS_FROZEN = 5
STEPS_THAWED = 5


def line(name, t):
    values = " ".join("%.9e" % v for v in t.flatten().tolist())
    return "%s %d %s\n" % (name, t.numel(), values)


def freeze_then_thaw(label, model, tensors, first, make_optimizer, x, y, out, clip=None):
    """Trains `model` on (x, y) with cross-entropy: the parameters in `first`
    frozen (requires_grad=False) for STEPS_FROZEN steps, then thawed for
    STEPS_THAWED more. Appends to `out` the initial tensors and, after each
    step, the loss and every tensor; tensors(model) names them as thaw does.
    clip(parameters with a gradient), when given, runs between backward and
    the optimizer step (gradient clipping)."""
    for name, t in tensors(model).items():
        out.append(line("%s/initial/%s" % (label, name), t))
    opt = make_optimizer(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(STEPS_FROZEN + STEPS_THAWED):
        frozen = step < STEPS_FROZEN
        for p in first:
            p.requires_grad_(not frozen)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip is not None:
            clip([p for p in model.parameters() if p.grad is not None])
        opt.step()
        out.append(line("%s/step%d/loss" % (label, step), loss.detach().reshape(1)))
        for name, t in tensors(model).items():
            out.append(line("%s/step%d/%s" % (label, step, name), t))
