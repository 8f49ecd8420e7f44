"""The in-memory loader with the data set resident on the training device (CUDA): no host work per batch.

The GPU runs of issue #11 showed an H100 14% busy on CNV, bound by the host: per batch the CPU gathered,
cropped and flipped a numpy batch, converted it to float and copied it over. Here the whole split is copied
once to the device as uint8 (CIFAR-10's 50,000 images: 150 MB; zero-padded for the crop: 240 MB), and a batch
is three device ops: one gather that does the crop and the flip (index arithmetic on the padded images), a
permute to NCHW (as a channels_last view: no copy) and the conversion to float32 / 255.

The epoch's plan (permutation, crop offsets, flips) is ArrayLoader's own, drawn on the host with the same
generator: the batches are the very same numbers as the CPU loader's (tested), so a run does not depend on
which loader fed it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.nn import functional as F  # noqa: N812

from bnn_flow.data.loader import ArrayLoader, crop_padding


class DeviceLoader:
    """Iterate over `(x, y)` batches of `base`'s epochs, computed on `device`; x is channels_last float32."""

    def __init__(self, base: ArrayLoader, device: torch.device) -> None:
        self.base = base
        self.device = device
        images = torch.from_numpy(base._images).to(device)  # uint8 N, H, W, C
        self.pad = crop_padding(base.augment, images.shape[1]) if base.augment else 0
        p = self.pad
        # zero padding as in random_crop_flip; pad the H and W dimensions of NHWC
        self._images = F.pad(images.permute(0, 3, 1, 2), (p, p, p, p)).permute(0, 2, 3, 1) if p else images
        self._labels = torch.from_numpy(base._labels).to(device)
        self.height, self.width = images.shape[1], images.shape[2]

    # the ArrayLoader interface the training loop uses
    @property
    def dataset_size(self) -> int:
        return self.base.dataset_size

    @property
    def batch_size(self) -> int:
        return self.base.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order_np, params_np = self.base._plan()
        dev = self.device
        order = torch.from_numpy(order_np).to(dev)
        params = {k: torch.from_numpy(v).to(dev) for k, v in params_np.items()}
        rows = torch.arange(self.height, device=dev)
        cols = torch.arange(self.width, device=dev)
        bs, drop = self.base.batch_size, self.base.drop_last
        for start in range(0, len(order), bs):
            sel = order[start:start + bs]
            if drop and len(sel) < bs:
                break
            if params:
                oy, ox = params["oy"][start:start + bs], params["ox"][start:start + bs]
                r = oy[:, None] + rows  # (B, H) rows of the padded image
                c = ox[:, None] + cols  # (B, W)
                if "flip" in params:  # the crop, mirrored: column j reads crop column W - 1 - j
                    f = params["flip"][start:start + bs, None]
                    c = torch.where(f, c.flip(1), c)
                x = self._images[sel[:, None, None], r[:, :, None], c[:, None, :]]  # (B, H, W, C)
            else:
                x = self._images[sel]
            # NHWC uint8 -> NCHW float32 / 255 in channels_last memory (no copy for the permute)
            x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
            yield x, self._labels[sel]


def on_device(loader: ArrayLoader, device: torch.device) -> ArrayLoader | DeviceLoader:
    """The loader to train with on `device`: the device-resident one on CUDA, the numpy one on the CPU (there,
    numpy's single-threaded data movement is the faster; see bnn_flow.data.loader)."""
    return DeviceLoader(loader, device) if device.type == "cuda" else loader
