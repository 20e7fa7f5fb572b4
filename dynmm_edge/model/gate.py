"""Gates that pick how many depth stages run (a prefix of the depth encoder).

RawGate ('raw', ours): runs before anything else on the preprocessed RGB+depth, average-pooled by
gate_downsample, so path 0 (no depth at all) is possible and the gate engine is tiny.
  names: pool, conv1 (ConvBNAct: conv, bn, act), conv2 (ConvBNAct), fc (1x1 conv, bias) -> 6 logits.

StemGate ('stem', DynMM's GlobalGate): runs on concat(maxpool(fused stem), maxpool(depth stem)) at
1/4 res; the depth stem always runs, so it chooses paths 1..5.
  names mirror DynMM's `gate_layer`: conv.0 (5x5 s2 conv, bias), conv.1 (BN), conv.2 (tanh),
  conv.3 (5x5 s2 conv, bias), conv.4 (BN), conv.5 (tanh), fc (1x1 conv, no bias) -> 5 logits.
  DynMM's weight column j corresponds to our path j+1 (importers map `gate_layer.*` -> `gate.*`).
Both use torch.mean for the global pool (exports as ReduceMean).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from dynmm_edge.model.blocks import ConvBNAct


class RawGate(nn.Module):
    def __init__(self, in_channels=4, downsample=8, channels=(8, 16), num_paths=6):
        super().__init__()
        self.downsample = int(downsample)
        self.pool = nn.AvgPool2d(self.downsample, stride=self.downsample) if self.downsample > 1 else nn.Identity()
        self.conv1 = ConvBNAct(in_channels, channels[0], 3, stride=2)
        self.conv2 = ConvBNAct(channels[0], channels[1], 3, stride=2)
        self.fc = nn.Conv2d(channels[1], num_paths, 1)

    def forward(self, rgb, depth):
        # pool each input first: concatenating at full resolution costs more than the convs
        x = torch.cat([self.pool(rgb), self.pool(depth)], dim=1)
        x = self.conv2(self.conv1(x))
        return self.fc(x.mean(dim=(2, 3), keepdim=True)).flatten(1)


class StemGate(nn.Module):
    def __init__(self, in_channels, hidden=8, num_paths=5):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=5, stride=2),
            nn.BatchNorm2d(hidden),
            nn.Tanh(),
            nn.Conv2d(hidden, hidden, kernel_size=5, stride=2),
            nn.BatchNorm2d(hidden),
            nn.Tanh(),
        )
        self.fc = nn.Conv2d(hidden, num_paths, kernel_size=1, bias=False)

    def forward(self, fused0, depth0):
        """fused0, depth0: stage-0 outputs at 1/2 res; the gate applies the encoder's max pool itself."""
        x = torch.cat([F.max_pool2d(fused0, 3, 2, 1), F.max_pool2d(depth0, 3, 2, 1)], dim=1)
        return self.fc(self.conv(x).mean(dim=(2, 3), keepdim=True)).flatten(1)
