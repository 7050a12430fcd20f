"""The three deep digits networks (torch modules), shared by train.py and the tests.

Every activation is x*x + x written as its own module (``actN``), so the exported ONNX
value names are readable: ``/act1/Mul_output_0`` (x*x) and ``/act1/Add_output_0`` (the
activation's output). Sum-pooling is ``F.avg_pool2d(x, k) * k*k`` in a module ``poolN``
(ONNX: ``/poolN/AveragePool_output_0`` then ``/poolN/Mul_output_0``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class SqPlusX(nn.Module):
    """x² + x (Ali, So, Avestimehr), exported as Mul(x, x) then Add(·, x)."""

    def forward(self, x):
        return x * x + x


class SumPool(nn.Module):
    """k×k sum-pooling, stride k: AveragePool + Mul by k² in ONNX."""

    def __init__(self, k: int = 2):
        super().__init__()
        self.k = k

    def forward(self, x):
        return F.avg_pool2d(x, self.k) * float(self.k * self.k)


class LeNet5(nn.Module):
    """LeNet-5 on 1×32×32 (digits upsampled ×4), x²+x and sum-pooling instead of tanh/subsampling."""

    input_hw = 32

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)  # 32 -> 28
        self.bn1 = nn.BatchNorm2d(6)
        self.act1 = SqPlusX()
        self.pool1 = SumPool(2)  # 28 -> 14
        self.conv2 = nn.Conv2d(6, 16, 5)  # 14 -> 10
        self.bn2 = nn.BatchNorm2d(16)
        self.act2 = SqPlusX()
        self.pool2 = SumPool(2)  # 10 -> 5
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(400, 120)
        self.bn3 = nn.BatchNorm1d(120)
        self.act3 = SqPlusX()
        self.fc2 = nn.Linear(120, 84)
        self.bn4 = nn.BatchNorm1d(84)
        self.act4 = SqPlusX()
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))
        x = self.pool2(self.act2(self.bn2(self.conv2(x))))
        x = self.flatten(x)
        x = self.act3(self.bn3(self.fc1(x)))
        x = self.act4(self.bn4(self.fc2(x)))
        return self.fc3(x)


class VGG7(nn.Module):
    """The 7-convolution CIFAR-10 network used by Ali, So & Avestimehr (MiniONN's), scaled to
    1×16×16 digits: 3×3 convs (pad 1) with C channels, two 2×2 sum-pools, 3×3 then two 1×1
    convs (C, then 16 channels), one dense layer 16·4·4 -> 10."""

    input_hw = 16

    def __init__(self, c: int = 64):
        super().__init__()
        spec = [  # (name, in, out, kernel)
            ("conv1", 1, c, 3), ("conv2", c, c, 3),
            ("conv3", c, c, 3), ("conv4", c, c, 3),
            ("conv5", c, c, 3), ("conv6", c, c, 1), ("conv7", c, 16, 1),
        ]
        for i, (name, ci, co, k) in enumerate(spec, start=1):
            setattr(self, name, nn.Conv2d(ci, co, k, padding=k // 2))
            setattr(self, f"bn{i}", nn.BatchNorm2d(co))
            setattr(self, f"act{i}", SqPlusX())
        self.pool1 = SumPool(2)  # 16 -> 8
        self.pool2 = SumPool(2)  # 8 -> 4
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def block(self, i, x):
        return getattr(self, f"act{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))

    def forward(self, x):
        x = self.block(2, self.block(1, x))
        x = self.pool1(x)
        x = self.block(4, self.block(3, x))
        x = self.pool2(x)
        x = self.block(7, self.block(6, self.block(5, x)))
        return self.fc(self.flatten(x))


class ResBlock(nn.Module):
    """conv3×3(stride) -> BN -> x²+x -> conv3×3 -> BN, plus the shortcut, then x²+x.
    The shortcut is the identity, or a 1×1 conv (stride) + BN when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = SqPlusX()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.projection = stride != 1 or cin != cout
        if self.projection:
            self.short_conv = nn.Conv2d(cin, cout, 1, stride=stride)
            self.short_bn = nn.BatchNorm2d(cout)
        self.act2 = SqPlusX()

    def forward(self, x):
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        short = self.short_bn(self.short_conv(x)) if self.projection else x
        return self.act2(y + short)


class ResNet(nn.Module):
    """Stem conv(1->16) on 1×16×16, three residual blocks (16@16×16, 32@8×8, 64@4×4; the last
    two with 1×1 stride-2 shortcut convs), average pool 4×4, dense 64 -> 10."""

    input_hw = 16

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(16)
        self.act0 = SqPlusX()
        self.block1 = ResBlock(16, 16, 1)
        self.block2 = ResBlock(16, 32, 2)
        self.block3 = ResBlock(32, 64, 2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.act0(self.bn0(self.conv0(x)))
        x = self.block3(self.block2(self.block1(x)))
        x = F.avg_pool2d(x, 4)
        return self.fc(self.flatten(x))


MODELS = {"lenet5": LeNet5, "vgg7": VGG7, "resnet": ResNet}


def act_modules(model: nn.Module):
    """(qualified name, module) of every x²+x activation, in forward order of definition."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, SqPlusX)]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    for k, cls in MODELS.items():
        m = cls()
        y = m(torch.zeros(2, 1, cls.input_hw, cls.input_hw))
        print(k, n_params(m), tuple(y.shape))
