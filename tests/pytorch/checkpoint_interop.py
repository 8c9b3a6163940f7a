#!/usr/bin/python3
"""safetensors interop between PyTorch and thaw: makes and checks the fixtures.

Run with Debian's python (python3-torch; the safetensors package is not in
Debian 12, so the format is written and read here with struct + json):

    /usr/bin/python3 tests/pytorch/checkpoint_interop.py          # write (a), check (b)
    /usr/bin/python3 tests/pytorch/checkpoint_interop.py --check  # write nothing, check both

(a) torch.manual_seed(0); nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)):
    its state_dict goes to tests/fixtures/torch_tiny.safetensors under thaw's
    names, and every value to tests/fixtures/torch_tiny_expected.json, which
    tests/checkpoint_test.cc compares with what thaw loads.
(c) A small CNN in thaw's names (conv2d_0 without bias, batch_normalization_0,
    depthwise_conv2d_0 with bias, head), trained three SGD steps so its
    running statistics are its own and num_batches_tracked is 3, goes to
    tests/fixtures/torch_cnn.safetensors in PyTorch's layouts (weights
    [out, in, kh, kw], [C, 1, kh, kw], num_batches_tracked I64), with an NHWC
    input batch and the model's eval-mode output in torch_cnn_expected.json.
    tests/checkpoint_test.cc loads it, predicts the same output, and saves it
    back byte for byte, so a file thaw writes for a CNN is one PyTorch wrote.
(b) tests/fixtures/thaw_written.safetensors, which tests/checkpoint_test.cc
    shows is byte for byte what thaw's SaveCheckpoint writes for values
    k * 0.25 - 1 (k counting elements across the tensors in order), is read
    by the reference rules, loaded with load_state_dict(strict=True), and every
    value is checked. It must also equal what this script's own writer makes
    for the same tensors.

Prints OK, or what failed and exits with status 1.
"""
import json
import pathlib
import struct
import sys

import torch
from torch import nn

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
TORCH_TO_THAW = {
    "0.weight": "dense_0.weight",
    "0.bias": "dense_0.bias",
    "2.weight": "dense_1.weight",
    "2.bias": "dense_1.bias",
}
THAW_TO_TORCH = {v: k for k, v in TORCH_TO_THAW.items()}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit


class InteropError(Exception):
    pass


def check(condition, message):
    if not condition:
        raise InteropError(message)


def make_model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def safetensors_bytes(tensors):
    """The file for {name: float32 tensor}, laid out as the reference writes it:
    compact JSON header padded with spaces to 8 bytes, data in the given order."""
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        integer = tensor.dtype == torch.int64
        values = tensor.detach().contiguous().flatten().tolist()
        if integer:
            blob = struct.pack("<%dq" % len(values), *values)
        else:
            values = tensor.detach().to(torch.float32).contiguous().flatten().tolist()
            blob = struct.pack("<%df" % len(values), *values)
        header[name] = {
            "dtype": "I64" if integer else "F32",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def reject_duplicates(pairs):
    keys = [k for k, _ in pairs]
    check(len(keys) == len(set(keys)), "a key appears twice in %r" % keys)
    return dict(pairs)


def read_safetensors(raw):
    """Parses a safetensors file by the reference implementation's rules (header
    starts with '{', tensors cover the data section exactly, in offset order).
    Returns ({name: tensor}, metadata)."""
    check(len(raw) >= 8, "file of %d bytes is too short" % len(raw))
    (n,) = struct.unpack_from("<Q", raw, 0)
    check(n <= MAX_HEADER_BYTES and 8 + n <= len(raw), "bad header length %d" % n)
    text = raw[8 : 8 + n]
    check(text.startswith(b"{"), "header does not start with '{'")
    header = json.loads(text.decode("utf-8"), object_pairs_hook=reject_duplicates)
    metadata = header.pop("__metadata__", None)
    check(
        metadata is None or all(isinstance(v, str) for v in metadata.values()),
        "__metadata__ must map strings to strings",
    )
    data = raw[8 + n :]
    tensors, end = {}, 0
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        check(entry["dtype"] in ("F32", "I64"), "%s: dtype %s" % (name, entry["dtype"]))
        integer = entry["dtype"] == "I64"
        begin, stop = entry["data_offsets"]
        check(begin == end, "%s: data starts at %d, expected %d" % (name, begin, end))
        count = 1
        for d in entry["shape"]:
            count *= d
        size = 8 if integer else 4
        check(stop - begin == size * count, "%s: %d bytes for shape %s" % (name, stop - begin, entry["shape"]))
        values = struct.unpack_from("<%d%s" % (count, "q" if integer else "f"), data, begin)
        dtype = torch.int64 if integer else torch.float32
        tensors[name] = torch.tensor(values, dtype=dtype).reshape(entry["shape"])
        end = stop
    check(end == len(data), "data section has %d bytes, tensors cover %d" % (len(data), end))
    return tensors, metadata


def write_or_check(path, content, check_only):
    if check_only:
        check(path.read_bytes() == content, "%s differs from what this script makes" % path)
    else:
        path.write_bytes(content)


def torch_tiny(check_only):
    """(a) PyTorch writes; thaw's test reads."""
    torch.manual_seed(0)
    model = make_model()
    state = model.state_dict()
    check(list(state) == list(TORCH_TO_THAW), "unexpected state_dict keys %s" % list(state))
    tensors = {TORCH_TO_THAW[k]: v for k, v in state.items()}
    content = safetensors_bytes(tensors)
    # float -> repr of the exact double of each float32: reads back exactly.
    expected = {
        name: {"shape": list(t.shape), "values": t.flatten().tolist()}
        for name, t in tensors.items()
    }
    lines = ['  "%s": %s' % (name, json.dumps(entry)) for name, entry in expected.items()]
    expected_text = ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")
    write_or_check(FIXTURES / "torch_tiny.safetensors", content, check_only)
    write_or_check(FIXTURES / "torch_tiny_expected.json", expected_text, check_only)
    # Our own reader gets back the exact state_dict.
    back, _ = read_safetensors((FIXTURES / "torch_tiny.safetensors").read_bytes())
    for name, t in tensors.items():
        check(torch.equal(back[name], t), "%s does not read back exactly" % name)


class TinyCnn(nn.Module):
    """conv 3x3 (2 -> 3, same, no bias) -> BN -> ReLU6 -> depthwise 3x3 (same,
    bias) -> global average pool -> head (3 -> 2), on 5 x 5 x 2 images."""

    def __init__(self):
        super().__init__()
        self.conv2d_0 = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.batch_normalization_0 = nn.BatchNorm2d(3, eps=1e-3, momentum=0.01)
        self.depthwise_conv2d_0 = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        a = nn.functional.relu6(self.batch_normalization_0(self.conv2d_0(x)))
        return self.head(self.depthwise_conv2d_0(a).mean(dim=(2, 3)))


def torch_cnn(check_only):
    """(c) PyTorch writes a CNN with BatchNorm statistics; thaw's test reads it."""
    torch.manual_seed(1)
    model = TinyCnn()
    # Momentum 0.5 (Keras 0.5) moves the statistics visibly in three steps.
    model.batch_normalization_0.momentum = 0.5
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        x = torch.randn(4, 2, 5, 5)
        loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 1, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    state = model.state_dict()
    check(int(state["batch_normalization_0.num_batches_tracked"]) == 3, "num_batches_tracked")
    x = torch.randn(2, 2, 5, 5)
    with torch.no_grad():
        logits = model(x)
    expected = {
        "x_nhwc": x.permute(0, 2, 3, 1).flatten().tolist(),
        "logits": logits.flatten().tolist(),
    }
    lines = ['  "%s": %s' % (name, json.dumps(values)) for name, values in expected.items()]
    write_or_check(FIXTURES / "torch_cnn.safetensors", safetensors_bytes(state), check_only)
    write_or_check(FIXTURES / "torch_cnn_expected.json",
                   ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8"), check_only)
    # The file loads into a fresh model, strictly, and gives the same output.
    back, _ = read_safetensors((FIXTURES / "torch_cnn.safetensors").read_bytes())
    fresh = TinyCnn()
    fresh.load_state_dict(back, strict=True)
    fresh.eval()
    for name, t in state.items():
        check(torch.equal(fresh.state_dict()[name], t), "%s does not read back exactly" % name)
    with torch.no_grad():
        check(torch.equal(fresh(x), logits), "the reloaded CNN predicts differently")


def thaw_written():
    """(b) thaw writes; PyTorch reads."""
    raw = (FIXTURES / "thaw_written.safetensors").read_bytes()
    tensors, metadata = read_safetensors(raw)
    check(metadata == {"format": "pt"}, "metadata %r" % metadata)
    check(sorted(tensors) == sorted(THAW_TO_TORCH), "tensors %s" % sorted(tensors))
    model = make_model()
    model.load_state_dict({THAW_TO_TORCH[k]: v for k, v in tensors.items()}, strict=True)
    k = 0
    expected = {}
    for torch_name, param in model.state_dict().items():
        count = param.numel()
        want = torch.tensor([i * 0.25 - 1 for i in range(k, k + count)], dtype=torch.float32)
        want = want.reshape(param.shape)
        check(torch.equal(param, want), "%s: %s, expected %s" % (torch_name, param, want))
        expected[TORCH_TO_THAW[torch_name]] = want
        k += count
    check(k == 23, "%d values" % k)
    # An independent writer makes the same bytes.
    check(safetensors_bytes(expected) == raw, "thaw_written.safetensors differs from this writer's file")
    # And the model runs on it: relu(W0 x + b0) then W1 . + b1, in float32.
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    w0, b0, w1, b1 = (expected[n] for n in ["dense_0.weight", "dense_0.bias", "dense_1.weight", "dense_1.bias"])
    check(torch.equal(model(x), torch.relu(x @ w0.T + b0) @ w1.T + b1), "forward pass differs")


def main():
    check_only = "--check" in sys.argv[1:]
    try:
        torch_tiny(check_only)
        torch_cnn(check_only)
        thaw_written()
    except (InteropError, OSError, KeyError, ValueError, RuntimeError) as e:
        print("FAILED: %s" % e, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
