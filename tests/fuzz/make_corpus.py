#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: tests/fuzz/corpus/<harness>/.

Standard library only. The files are small and valid (or valid except for one
stated thing), so that the fuzzers start from inputs that get past the first
checks. The output is deterministic (no clock, no randomness): rerunning the
script rewrites the same bytes.

fuzz_checkpoint: safetensors files for the model in fuzz_checkpoint.cc (the
names and the shapes PyTorch gives them; change both files together).
fuzz_idx: IDX image and label files, plain and gzip-compressed.

Usage: tests/fuzz/make_corpus.py
"""

import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_checkpoint.cc's variables: (name, dtype, shape as in the file).
MODEL = [
    ("conv2d_0.weight", "F32", [3, 2, 3, 3]),
    ("batch_normalization_0.weight", "F32", [3]),
    ("batch_normalization_0.bias", "F32", [3]),
    ("batch_normalization_0.running_mean", "F32", [3]),
    ("batch_normalization_0.running_var", "F32", [3]),
    ("batch_normalization_0.num_batches_tracked", "I64", []),
    ("depthwise_conv2d_0.weight", "F32", [3, 1, 3, 3]),
    ("depthwise_conv2d_0.bias", "F32", [3]),
    ("dense_0.weight", "F32", [2, 3]),
    ("dense_0.bias", "F32", [2]),
]


def elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def float_bytes(index, shape):
    """Distinct, exactly representable float32 values: 0.125 * k - index."""
    n = elements(shape)
    return struct.pack("<%df" % n, *[0.125 * k - index for k in range(n)])


def safetensors(tensors, metadata=None, pad=True, reverse_data=False):
    """tensors: (name, dtype, shape, data bytes); data in list order unless reversed."""
    header = {}
    offset = 0
    order = list(reversed(tensors)) if reverse_data else tensors
    offsets = {}
    for name, _, _, data in order:
        offsets[name] = (offset, offset + len(data))
        offset += len(data)
    for name, dtype, shape, _ in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": list(offsets[name])}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(d for _, _, _, d in order)


def model_tensors(count_dtype="I64"):
    out = []
    for i, (name, dtype, shape) in enumerate(MODEL):
        if name.endswith("num_batches_tracked"):  # three batches tracked
            dtype = count_dtype
            data = struct.pack("<q", 3) if dtype == "I64" else struct.pack("<f", 3.0)
        else:
            data = float_bytes(i, shape)
        out.append((name, dtype, shape, data))
    return out


def idx(magic, dims, data):
    return struct.pack(">I%dI" % len(dims), magic, *dims) + bytes(data)


def write(harness, name, data):
    directory = os.path.join(HERE, "corpus", harness)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    # As SaveCheckpoint (and PyTorch) write it: every tensor, in order, padded.
    write("fuzz_checkpoint", "full.safetensors",
          safetensors(model_tensors(), metadata={"format": "pt"}))
    # An older file: the count as F32; unpadded header, data in reverse order.
    write("fuzz_checkpoint", "float_count.safetensors",
          safetensors(model_tensors("F32"), pad=False, reverse_data=True))
    # Loads only non-strictly: the head alone, and tensors the model lacks,
    # one of a dtype thaw does not know the size of.
    head = [t for t in model_tensors() if t[0].startswith("dense_0.")]
    extra = [("step", "I64", [], struct.pack("<q", 7)),
             ("lut", "F8_E8M0", [4], bytes([1, 2, 3, 4]))]
    write("fuzz_checkpoint", "partial.safetensors",
          safetensors(head + extra, metadata={"format": "pt", "note": "head only"}))
    # The count alone, as an older file has it (F32): small, so that
    # mutations often reach its 4 data bytes.
    count = [t for t in model_tensors("F32") if t[0].endswith("num_batches_tracked")]
    write("fuzz_checkpoint", "count_only.safetensors", safetensors(count))
    # Nothing at all: fails strictly, loads nothing non-strictly.
    write("fuzz_checkpoint", "empty.safetensors", safetensors([]))

    images = idx(0x803, [2, 3, 4], [(17 * i) % 256 for i in range(2 * 3 * 4)])
    labels = idx(0x801, [5], [0, 9, 3, 255, 1])
    write("fuzz_idx", "images.idx", images)
    write("fuzz_idx", "labels.idx", labels)
    write("fuzz_idx", "no_images.idx", idx(0x803, [0, 2, 2], []))
    # mtime=0: the same bytes on every run.
    write("fuzz_idx", "images.idx.gz", gzip.compress(images, compresslevel=9, mtime=0))
    write("fuzz_idx", "labels.idx.gz", gzip.compress(labels, compresslevel=9, mtime=0))


if __name__ == "__main__":
    main()
