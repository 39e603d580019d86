"""An example model file for ``initlab plan`` / ``initlab init``: a factory that returns a module.

initlab plan examples/my_model.py:build -p kaiming
initlab init examples/my_model.py:build -p kaiming --seed 0 -o /tmp/state.pt
"""

from torch import nn


def build() -> nn.Module:
    """A small CNN for 1x28x28 images and 10 classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
