"""ResNet encoders that run stage by stage, so the depth encoder can stop after any stage.

Stage 0 = conv1+bn1+relu (1/2 res); stage 1 = maxpool + layer1 (1/4); stages 2..4 = layer2..4.
Attribute names follow ESANet (conv1, bn1, layer1..4) so its state_dicts load unchanged.
"""
from typing import Tuple

import torch.nn as nn
import torch.nn.functional as F

from dynmm_edge.model.blocks import BLOCK_TYPES, make_activation

LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}


def scaled(channels: int, width_mult: float) -> int:
    """Channel count after width scaling; at least 8 so SE and BN stay meaningful in tiny demo models."""
    return max(8, int(round(channels * width_mult)))


class ResNetEncoder(nn.Module):
    def __init__(self, encoder="resnet34", block="nbt1d", width_mult=1.0, input_channels=3, activation="relu"):
        super().__init__()
        if encoder not in LAYERS:
            raise ValueError(f"encoder {encoder!r} unknown; choose from {', '.join(LAYERS)}")
        block_cls = BLOCK_TYPES[block]
        stem = scaled(64, width_mult)
        self.conv1 = nn.Conv2d(input_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.act = make_activation(activation)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = stem
        channels = [stem]
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), LAYERS[encoder])):
            planes = scaled(planes, width_mult)
            blocks = []
            for b in range(count):
                blocks.append(block_cls(inplanes, planes, stride=(2 if index > 0 and b == 0 else 1),
                                        activation=activation))
                inplanes = planes * block_cls.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            channels.append(inplanes)
        self._channels = tuple(channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def stage_channels(self) -> Tuple[int, ...]:
        """Output channels of stages 0..4."""
        return self._channels

    @property
    def stage_strides(self) -> Tuple[int, ...]:
        return (2, 4, 8, 16, 32)

    def forward_first_conv(self, x):
        return self.act(self.bn1(self.conv1(x)))

    def forward_layer1(self, x):
        return self.layer1(x)

    def forward_layer2(self, x):
        return self.layer2(x)

    def forward_layer3(self, x):
        return self.layer3(x)

    def forward_layer4(self, x):
        return self.layer4(x)

    def forward_stage(self, index: int, x):
        """Stage `index` (0..4); stage 1 includes the max pool as in ESANet's model.forward."""
        if index == 0:
            return self.forward_first_conv(x)
        if index == 1:
            x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        if 1 <= index <= 4:
            return getattr(self, f"layer{index}")(x)
        raise IndexError(f"encoder stage {index} does not exist (0..4)")
