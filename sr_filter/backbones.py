"""The published ImageNet backbone files that training's perceptual and texture losses fetch into
the weights cache beside the manifest's files (torchvision's VGG-19 and ResNet-50), pinned by URL
and sha256. Torch-free, so that ``sr-filter models`` can count and clear them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedWeights:
    url: str
    #: torchvision names its files ``<arch>-<first 8 hex of the sha256>.pth``
    sha256_prefix: str
    #: the full pin; None where this version does not know it yet (see ``resolve_weights``)
    sha256: str | None = None
    size: int | None = None

    @property
    def file(self) -> str:
        """The file's name in the cache (the URL's last part)."""
        return self.url.rsplit("/", 1)[-1]


#: full sha256 values of torchvision's files, as recorded by several independent projects that
#: pin them; each starts with the prefix torchvision puts in the file name
PUBLISHED: dict[str, PublishedWeights] = {
    "vgg19": PublishedWeights(
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d",
        "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44", 574673361,
    ),
    "resnet50": PublishedWeights(
        "https://download.pytorch.org/models/resnet50-0676ba61.pth", "0676ba61",
        "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
    ),
}
