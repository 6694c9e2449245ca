"""HPM picture: predicted-loss map and the generated mask, written to PNG."""
import cv2
import numpy as np
import torch

from mmpretrain.registry import MODELS
from mmmim.visualization.hpm import render_hpm_figure

from .test_hpm import IMG, L, tiny_hpm_cfg


def test_render_hpm_figure(tmp_path):
    model = MODELS.build(tiny_hpm_cfg())
    model.init_weights()
    inputs = torch.randn(3, 3, IMG, IMG)
    out = str(tmp_path / 'hpm.png')
    canvas, scores, mask, k = render_hpm_figure(
        model, inputs, out, mean=[0.] * 3, std=[1.] * 3, position=799,
        total=800, gap=2, scale=1)
    assert k == 6  # M = 12, end of the ramp: int(12 * 0.5)
    assert mask.shape == (3, L) and (mask.sum(1) == 12).all()
    assert mask.gather(1, scores.topk(k, 1).indices).all()
    png = cv2.imread(out)[..., ::-1]
    assert png.shape == (3 * (IMG + 2) + 2, 3 * (IMG + 2) + 2, 3)
    assert np.array_equal(png, canvas)
    # mask panel of image 0: the hardest patch is red-tinted, a visible
    # patch shows the image
    x0 = 2 + 2 * (IMG + 2)
    hard = int(scores[0].argmax())
    r, c = divmod(hard, IMG // 4)
    pix = canvas[2 + 4 * r, x0 + 4 * c]
    assert pix[0] >= 127 and pix[1] < 128 and pix[2] < 128
    vis = int((~mask[0]).nonzero()[0])
    r, c = divmod(vis, IMG // 4)
    img = canvas[2 + 4 * r, 2 + 4 * c]
    assert np.array_equal(canvas[2 + 4 * r, x0 + 4 * c], img)
