"""Convert scikit-learn's bundled copy of the UCI handwritten digits into assets/digits.safetensors (run once).

scikit-learn ships the data as ``sklearn/datasets/data/digits.csv.gz`` (1,797 rows of 64 pixel counts 0..16 and
the digit). This script reads that file, from an installed scikit-learn or straight out of a scikit-learn wheel
(``pip download scikit-learn --no-deps`` fetches one without installing anything), checks it, draws the fixed
train / held-out split (20% of every class held out), and writes:

    assets/digits.safetensors   images uint8 [1797, 8, 8] (0..16), labels uint8 [1797], heldout uint8 [1797] (1 = held out)
    assets/digits.json          the data card: source, licence (CC BY 4.0), citation, split, checksums

    python scripts/convert_digits.py [--wheel scikit_learn-*.whl] [--out assets]

adiff itself never needs scikit-learn: ``adiff.data.make_dataset("digits", ...)`` reads the file above.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adiff.data.digits import tensors_sha256  # noqa: E402

MEMBER = "sklearn/datasets/data/digits.csv.gz"
HELDOUT_FRACTION = 0.2  # of every class
SPLIT_SEED = 20_240_601  # numpy PCG64 seed of the split (the split itself is stored, so this only documents it)


def read_csv_gz(wheel: str | None) -> tuple[bytes, str]:
    if wheel:
        with zipfile.ZipFile(wheel) as z:
            return z.read(MEMBER), f"{Path(wheel).name}:{MEMBER}"
    import importlib.resources

    import sklearn  # noqa: F401  (only to locate the file; nothing of sklearn runs)

    ref = importlib.resources.files("sklearn.datasets") / "data" / "digits.csv.gz"
    return ref.read_bytes(), f"scikit-learn {sklearn.__version__}:{MEMBER}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", help="a scikit-learn wheel to read the file from (default: the installed scikit-learn)")
    ap.add_argument("--out", default=str(ROOT / "assets"))
    args = ap.parse_args()
    blob, origin = read_csv_gz(args.wheel)
    rows = np.loadtxt(gzip.decompress(blob).decode().splitlines(), delimiter=",", dtype=np.int64)
    assert rows.shape == (1797, 65), rows.shape
    images, labels = rows[:, :64], rows[:, 64]
    assert images.min() == 0 and images.max() == 16 and set(labels.tolist()) == set(range(10))
    rng = np.random.Generator(np.random.PCG64(SPLIT_SEED))
    heldout = np.zeros(len(labels), dtype=np.uint8)
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        k = int(round(HELDOUT_FRACTION * len(idx)))
        heldout[rng.permutation(idx)[:k]] = 1
    tensors = {
        "images": torch.from_numpy(images.reshape(-1, 8, 8).astype(np.uint8)),
        "labels": torch.from_numpy(labels.astype(np.uint8)),
        "heldout": torch.from_numpy(heldout),
    }
    out = Path(args.out)
    meta = {"source": origin, "source_sha256": hashlib.sha256(blob).hexdigest(), "licence": "CC BY 4.0"}
    save_file(tensors, str(out / "digits.safetensors"), metadata=meta)
    (out / "digits.safetensors").chmod(0o644)
    tensors_sha = tensors_sha256(tensors)
    card = {
        "dataset": "Optical Recognition of Handwritten Digits (UCI ML repository, id 80), the 1,797-image test set "
        "that scikit-learn ships as load_digits()",
        "creators": "E. Alpaydin, C. Kaynak (Bogazici University), 1998",
        "licence": "Creative Commons Attribution 4.0 International (CC BY 4.0), as the UCI ML repository states for "
        "this dataset; https://creativecommons.org/licenses/by/4.0/",
        "citation": "Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits [Dataset]. UCI Machine "
        "Learning Repository. https://doi.org/10.24432/C50P49",
        "what": "8x8 images: 32x32 bitmaps of handwritten digits (43 writers, NIST form-based preprocessing) divided "
        "into 4x4 blocks, each pixel the number of 'on' pixels in its block (0..16); label = digit 0-9",
        "source": origin,
        "source_sha256": meta["source_sha256"],
        "file": "digits.safetensors",
        "tensors_sha256": tensors_sha,  # adiff.data.digits checks it at load (the file's own bytes vary run to run)
        "tensors": {
            "images": "uint8 [1797, 8, 8], 0..16",
            "labels": "uint8 [1797], 0..9",
            "heldout": "uint8 [1797], 1 = in the held-out split",
        },
        "split": {
            "heldout_fraction_per_class": HELDOUT_FRACTION,
            "seed": SPLIT_SEED,
            "train": int((heldout == 0).sum()),
            "heldout": int(heldout.sum()),
            "per_class_heldout": [int(heldout[labels == d].sum()) for d in range(10)],
        },
        "changes": "none to the values; only stored as safetensors with a fixed split",
        "command": "pip download scikit-learn --no-deps -d /tmp/sk && "
        "python scripts/convert_digits.py --wheel /tmp/sk/scikit_learn-*.whl",
    }
    (out / "digits.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card["split"]), tensors_sha)


if __name__ == "__main__":
    main()
