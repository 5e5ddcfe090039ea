"""Two loop run folders compared file by file: the determinism check of `make loop`."""

from __future__ import annotations

from pathlib import Path

from culturespa.run_files import (
    ANSWERS_FILE,
    ANSWERS_FOLDER,
    COLLECTED_FILE,
    COLLECTED_FOLDER,
    DATA_FOLDER,
    FILTERED_QUESTIONS,
    QUESTIONS_FOLDER,
    SFT_FOLDER,
    SPECIFIC,
)


def compare_runs(first: Path, second: Path) -> list[tuple[str, str]]:
    """(file, verdict) for the data files and adapter weights the two run folders share: data
    byte for byte, adapters tensor by tensor (largest absolute difference)."""
    out = []
    data_files = sorted(
        p.relative_to(first)
        for pattern in (
            f"{DATA_FOLDER}/{QUESTIONS_FOLDER}/{FILTERED_QUESTIONS}",
            f"{DATA_FOLDER}/{ANSWERS_FOLDER}/{ANSWERS_FILE}",
            f"{DATA_FOLDER}/{COLLECTED_FOLDER}/{COLLECTED_FILE}",
            f"{DATA_FOLDER}/{SFT_FOLDER}/*.jsonl",
            f"{DATA_FOLDER}/{SFT_FOLDER}/{SPECIFIC}/*.jsonl",
        )
        for p in first.glob(pattern)
    )  # fmt: skip
    for rel in data_files:
        other = second / rel
        if not other.is_file():
            out.append((str(rel), "missing in the second run"))
        else:
            same = (first / rel).read_bytes() == other.read_bytes()
            out.append((str(rel), "identical" if same else "DIFFERENT"))
    for path in sorted(first.glob("train/**/adapter_model.safetensors")):
        rel = path.relative_to(first)
        other = second / rel
        if not other.is_file():
            out.append((str(rel), "missing in the second run"))
            continue
        out.append((str(rel), _compare_tensors(path, other)))
    return out


def _compare_tensors(a: Path, b: Path) -> str:
    from safetensors.numpy import load_file

    left, right = load_file(str(a)), load_file(str(b))
    if set(left) != set(right):
        return "DIFFERENT tensor names"
    if all(left[k].tobytes() == right[k].tobytes() for k in left):
        return f"identical ({len(left)} tensors, bit for bit)"
    import numpy as np

    diff = max(float(np.max(np.abs(left[k].astype(np.float64) - right[k]))) for k in left)
    return f"DIFFERENT (largest absolute difference {diff:.3g})"
