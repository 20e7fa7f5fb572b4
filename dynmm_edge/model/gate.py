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


CUE_NAMES = ("rgb_r", "rgb_g", "rgb_b", "depth", "depth_invalid", "rgb_noise", "rgb_edge", "depth_edge",
             "depth_edge_without_rgb", "rgb_edge_without_depth")


def frame_cues(rgb, depth, pool: int):
    """Cue maps [B, 10, H/pool, W/pool] a gate can read a frame's quality from (all exportable ops):

    mean colour (brightness), mean depth, share of invalid depth (holes read exactly 0 after the
    shared preprocessing), RGB noise (|gray - 3x3 mean| at full resolution), RGB and depth edge
    strength at the cue resolution, and where they disagree: depth edges without RGB edges
    (camouflage) and RGB edges without depth edges (glass, far walls, smeared depth).
    """
    gray = rgb.mean(dim=1, keepdim=True)
    noise = (gray - F.avg_pool2d(gray, 3, 1, 1, count_include_pad=False)).abs()
    invalid = (depth == 0).to(depth.dtype)
    if pool > 1:
        rgb_p, depth_p = F.avg_pool2d(rgb, pool), F.avg_pool2d(depth, pool)
        invalid, noise, gray_p = F.avg_pool2d(invalid, pool), F.avg_pool2d(noise, pool), F.avg_pool2d(gray, pool)
    else:
        rgb_p, depth_p, gray_p = rgb, depth, gray
    e_rgb = (gray_p - F.avg_pool2d(gray_p, 3, 1, 1, count_include_pad=False)).abs()
    e_depth = (depth_p - F.avg_pool2d(depth_p, 3, 1, 1, count_include_pad=False)).abs()
    return torch.cat([rgb_p, depth_p, invalid, noise, e_rgb, e_depth, F.relu(e_depth - e_rgb),
                      F.relu(e_rgb - e_depth)], dim=1)


class CueGate(nn.Module):
    """Raw gate with frame-quality cues (gate_cues=True): the convs see the cue maps at 1/(downsample/2)
    resolution, where a camouflaged object is still several cells wide, and the head also sees
    each cue's frame mean and the conv features' max (a small region can decide a frame).

    names: conv1, conv2 (ConvBNAct), norm (BN over the head input), fc (1x1 conv) -> num_paths logits.
    """

    def __init__(self, downsample=8, channels=(8, 16), num_paths=6):
        super().__init__()
        self.cue_pool = max(1, int(downsample) // 2)
        n = len(CUE_NAMES)
        self.conv1 = ConvBNAct(n, channels[0], 3, stride=2)
        self.conv2 = ConvBNAct(channels[0], channels[1], 3, stride=2)
        head = 2 * channels[1] + n + 1
        self.norm = nn.BatchNorm2d(head)
        self.fc = nn.Conv2d(head, num_paths, 1)

    def forward(self, rgb, depth):
        cues = frame_cues(rgb, depth, self.cue_pool)
        x = self.conv2(self.conv1(cues))
        gray = cues[:, :3].mean(dim=1, keepdim=True)
        g_mean = gray.mean(dim=(2, 3), keepdim=True)
        contrast = ((gray - g_mean) ** 2).mean(dim=(2, 3), keepdim=True).sqrt()  # low in dark frames
        head = torch.cat([x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True),
                          cues.mean(dim=(2, 3), keepdim=True), contrast], dim=1)
        return self.fc(self.norm(head)).flatten(1)
