"""Reconstruction pictures: layout and pixel content, and the CLI on a checkpoint."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mmmim.visualization import reconstruction_grid
from mmpretrain.registry import MODELS

from .conftest import requires_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]


class Echo(torch.nn.Module):
    """Reconstructs every image as constant 1 (normalised units)."""

    class backbone:
        patch_resolution = (2, 2)

    def reconstruct(self, inputs, mask):
        return torch.ones_like(inputs)


def test_grid_layout_and_content():
    inputs = torch.zeros(2, 3, 8, 8)
    mask = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.bool)
    grid = reconstruction_grid(Echo(), inputs, mask, mean=[100] * 3,
                               std=[50] * 3, gap=2)
    assert grid.shape == (2 * 10 + 2, 4 * 10 + 2, 3)
    row0 = grid[2:10]
    input_panel, masked_panel = row0[:, 2:10], row0[:, 12:20]
    rec_panel, pasted_panel = row0[:, 22:30], row0[:, 32:40]
    assert (input_panel == 100).all()
    assert (masked_panel[:4, :4] == 127).all()  # top-left patch masked
    assert (masked_panel[4:, :] == 100).all()
    assert (rec_panel == 150).all()  # 1 * std + mean
    assert (pasted_panel[:4, :4] == 150).all()
    assert (pasted_panel[4:, 4:] == 100).all()


@requires_fashion_mnist
@pytest.mark.parametrize('method,masked', [('mae', '48/64'),
                                           ('itpn', '8/16')])
def test_cli_writes_png_for_a_checkpoint(tmp_path, method, masked):
    from mmengine.config import Config
    config = ROOT / f'configs/demo/{method}_fashion-mnist.py'
    cfg = Config.fromfile(str(config))
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = tmp_path / 'demo.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out = tmp_path / 'rec.png'
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools/analysis/visualize_reconstruction.py'),
         str(config), str(ckpt), '--num-images', '3', '--out', str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 3 * 32 and img.shape[1] > 4 * 32
    assert f'{masked} patches masked' in proc.stdout
    assert len(np.unique(img)) > 10


def test_tools_build_the_model_with_the_configs_preprocessor():
    from mmengine.config import Config

    from mmmim.utils import build_model_from_config
    cfg = Config.fromfile(str(ROOT / 'configs/demo/mae_fashion-mnist.py'))
    assert 'data_preprocessor' not in cfg.model  # top level, as the Runner
    model = build_model_from_config(cfg, init_weights=False)
    assert model.data_preprocessor.mean.flatten().tolist() == \
        pytest.approx(cfg.data_preprocessor.mean)
    assert model.data_preprocessor.std.flatten().tolist() == \
        pytest.approx(cfg.data_preprocessor.std)
