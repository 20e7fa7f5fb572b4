"""ESANet decoder: 3 modules (conv3x3, NBt1D blocks, learned x2 upsampling, add skip), then classes.

Names: decoder_module_{1,2,3}.{conv3x3, decoder_blocks, upsample, side_output}, conv_out, upsample1/2.
Side outputs exist for training with deep supervision and are not run at inference.
"""
import torch.nn as nn

from dynmm_edge.model.blocks import ConvBNAct, NonBottleneck1D, Upsample


class DecoderModule(nn.Module):
    def __init__(self, channels_in, channels_dec, num_blocks, num_classes, activation="relu", upsampling="learned"):
        super().__init__()
        self.conv3x3 = ConvBNAct(channels_in, channels_dec, 3, activation=activation)
        self.decoder_blocks = nn.Sequential(*[NonBottleneck1D(channels_dec, channels_dec, activation=activation)
                                              for _ in range(num_blocks)])
        self.upsample = Upsample(channels_dec, upsampling)
        self.side_output = nn.Conv2d(channels_dec, num_classes, 1)

    def forward(self, x, skip, return_side=False):
        out = self.decoder_blocks(self.conv3x3(x))
        side = self.side_output(out) if return_side else None
        return self.upsample(out) + skip, side


class Decoder(nn.Module):
    def __init__(self, channels_in, channels, blocks, num_classes, activation="relu", upsampling="learned"):
        super().__init__()
        self.decoder_module_1 = DecoderModule(channels_in, channels[0], blocks[0], num_classes, activation, upsampling)
        self.decoder_module_2 = DecoderModule(channels[0], channels[1], blocks[1], num_classes, activation, upsampling)
        self.decoder_module_3 = DecoderModule(channels[1], channels[2], blocks[2], num_classes, activation, upsampling)
        self.conv_out = nn.Conv2d(channels[2], num_classes, 3, padding=1)
        self.upsample1 = Upsample(num_classes, upsampling)
        self.upsample2 = Upsample(num_classes, upsampling)

    def forward(self, context, skip3, skip2, skip1, return_side=False):
        out, s32 = self.decoder_module_1(context, skip3, return_side)
        out, s16 = self.decoder_module_2(out, skip2, return_side)
        out, s8 = self.decoder_module_3(out, skip1, return_side)
        out = self.upsample2(self.upsample1(self.conv_out(out)))
        return (out, (s8, s16, s32)) if return_side else out
