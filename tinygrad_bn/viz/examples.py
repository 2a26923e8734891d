"""Small models for drawing: the `graph` command, docs/make_gallery.py and the viz tests use them."""

from __future__ import annotations

from tinygrad_bn import nn
from tinygrad_bn.tensor import Tensor


class Model(nn.Module):
    """Named layers applied in order: a Sequential whose children have readable names.

    The drawing then says `bn1.weight`, not `1.weight`, and boxes the whole model
    in a cluster titled by the class name.
    """

    def __init__(self, **layers: nn.Module):
        super().__init__()
        for name, layer in layers.items():
            setattr(self, name, layer)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.children():
            x = layer(x)
        return x
