"""Building blocks with ESANet's submodule and parameter names, so ESANet/DynMM state_dicts load by name.

Names mirrored (parametric modules only matter for state_dicts):
  ConvBNAct: Sequential conv, bn, act           SqueezeAndExcitation: fc.0 (conv), fc.2 (conv)
  BasicBlock: conv1, bn1, conv2, bn2, downsample.{0,1}
  NonBottleneck1D: conv3x1_1, conv1x3_1, bn1, conv3x1_2, conv1x3_2, bn2, downsample.{0,1}
  Bottleneck: conv1, bn1, conv2, bn2, conv3, bn3, downsample.{0,1}
  Upsample ('learned'): conv (depthwise 3x3, initialised to the bilinear kernel)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=False)  # not inplace: hooks and the present-flag algebra need intact inputs
    raise ValueError(f"activation {name!r} is not supported (only 'relu')")


class ConvBNAct(nn.Sequential):
    def __init__(self, channels_in, channels_out, kernel_size, activation="relu", stride=1):
        super().__init__()
        self.add_module("conv", nn.Conv2d(channels_in, channels_out, kernel_size, stride=stride,
                                          padding=kernel_size // 2, bias=False))
        self.add_module("bn", nn.BatchNorm2d(channels_out))
        self.add_module("act", make_activation(activation))


class SqueezeAndExcitation(nn.Module):
    """Channel re-weighting. Global mean via torch.mean (exports as ReduceMean, no adaptive pooling)."""

    def __init__(self, channels, reduction=16, activation="relu"):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            make_activation(activation),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


def _downsample(inplanes, outplanes, stride):
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False), nn.BatchNorm2d(outplanes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, activation="relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act = make_activation(activation)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        needs = stride != 1 or inplanes != planes * self.expansion
        self.downsample = _downsample(inplanes, planes * self.expansion, stride) if needs else None

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class NonBottleneck1D(nn.Module):
    """ERFNet block: factorised 3x1 / 1x3 convs (with bias) and BN eps 1e-3, as ESANet."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, activation="relu"):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(inplanes, planes, (3, 1), stride=(stride, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(planes, planes, (1, 3), stride=(1, stride), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(planes, eps=1e-3)
        self.act = make_activation(activation)
        self.conv3x1_2 = nn.Conv2d(planes, planes, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_2 = nn.Conv2d(planes, planes, (1, 3), padding=(0, 1), bias=True)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-3)
        needs = stride != 1 or inplanes != planes
        self.downsample = _downsample(inplanes, planes, stride) if needs else None

    def forward(self, x):
        out = self.act(self.conv3x1_1(x))
        out = self.act(self.bn1(self.conv1x3_1(out)))
        out = self.act(self.conv3x1_2(out))
        out = self.bn2(self.conv1x3_2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class Bottleneck(nn.Module):
    """torchvision v1.5 bottleneck (stride on the 3x3), as ESANet's ResNet-50."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, activation="relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.act = make_activation(activation)
        needs = stride != 1 or inplanes != planes * 4
        self.downsample = _downsample(inplanes, planes * 4, stride) if needs else None

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


BLOCK_TYPES = {"basic": BasicBlock, "nbt1d": NonBottleneck1D, "bottleneck": Bottleneck}

_BILINEAR_3X3 = ((0.0625, 0.125, 0.0625), (0.125, 0.25, 0.125), (0.0625, 0.125, 0.0625))


class Upsample(nn.Module):
    """x2 nearest + depthwise 3x3 conv initialised to the bilinear kernel ("learned-3x3" in ESANet).

    Exports as Resize(nearest) + Conv, which every TensorRT version handles. 'learned' pads by
    replication (ESANet default); 'learned-zeropad' uses zero padding (DynMM's default).
    """

    def __init__(self, channels, mode="learned"):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(channels, channels, 3, groups=channels, padding=0 if mode == "learned" else 1)
        with torch.no_grad():
            kernel = torch.tensor(_BILINEAR_3X3, dtype=self.conv.weight.dtype, device=self.conv.weight.device)
            self.conv.weight.copy_(kernel.expand(channels, 1, 3, 3))
            self.conv.bias.zero_()

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.mode == "learned":
            x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return self.conv(x)
