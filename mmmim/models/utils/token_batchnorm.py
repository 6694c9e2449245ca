"""BatchNorm over the tokens of a sequence (SIM's projector and predictor)."""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer


class TokenBatchNorm(nn.Module):
    """BatchNorm over tokens: (B, L, C) -> BatchNorm1d on (B, C, L), so the
    statistics run over all B x L tokens; always in float32 (autocast off).

    Args:
        dim (int): Channels.
        norm_cfg (dict): mmcv norm config, ``dict(type='BN1d')`` or
            ``dict(type='SyncBN')``. Under DDP, ``sync_bn='torch'`` in the
            config converts BN1d to SyncBN as the reference does; mmengine
            reverts SyncBN to BN when not distributed.
    """

    def __init__(self, dim: int, norm_cfg: dict = dict(type='BN1d'),
                 device=None, dtype=None) -> None:
        super().__init__()
        self.bn = build_norm_layer(norm_cfg, dim)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.bn(x.float().transpose(1, 2)).transpose(1, 2)
