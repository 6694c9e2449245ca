"""SIMTwoViews: recorded crop geometry matches the pixels, and the pipeline
packs what SIMPretrainer reads."""
import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose

from mmpretrain.registry import TRANSFORMS
from mmmim.models.utils.relative_position import (relative_geometry,
                                                  relative_positions)

H, W, S, P = 200, 240, 32, 8  # image, view size, patch
G = S // P


def _ramp_image():
    """Channel 0 holds the row index, channel 1 the column index."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = np.arange(H)[:, None]
    img[..., 1] = np.arange(W)[None, :]
    return img


def _views(flip_prob, seed):
    np.random.seed(seed)
    t = TRANSFORMS.build(
        dict(type='SIMTwoViews', size=S, crop_ratio_range=(0.3, 1.0),
             interpolation='bilinear', backend='cv2', flip_prob=flip_prob,
             view1_pipeline=[], view2_pipeline=[]))
    return t(dict(img=_ramp_image()))


def test_views_are_the_recorded_flipped_crops():
    img = _ramp_image()
    for seed in range(4):
        res = _views(0.5, seed)
        assert len(res['img']) == 2 and res['img_width'] == W
        assert res['crop_boxes'].shape == (2, 4)
        assert res['flips'].shape == (2, )
        for view, (i, j, h, w), flip in zip(res['img'], res['crop_boxes'],
                                             res['flips']):
            i, j, h, w = map(int, (i, j, h, w))
            assert 0 <= i and i + h <= H and 0 <= j and j + w <= W
            src = mmcv.imflip(img) if flip else img
            expected = mmcv.imresize(src[i:i + h, j:j + w], (S, S),
                                     interpolation='bilinear', backend='cv2')
            np.testing.assert_array_equal(view, expected)


def test_geometry_matches_pixel_content():
    """Decode view 2's patch centres from the ramp pixels, map them into view
    1's patch grid and compare with the relative positions."""
    seen_flips = set()
    for seed in range(12):
        res = _views(0.5, seed)
        boxes = torch.from_numpy(res['crop_boxes']).double()
        flips = torch.from_numpy(res['flips'])
        seen_flips.add(bool(flips[0] ^ flips[1]))
        geo = relative_geometry(boxes[None, 0], boxes[None, 1], flips[None, 0],
                                flips[None, 1], torch.tensor([float(W)]))
        pos_h, pos_w = relative_positions(geo, G)
        i1, j1, h1, w1 = res['crop_boxes'][0]
        view2 = res['img'][1].astype(np.float64)
        for r in range(G):
            for c in range(G):
                cy, cx = r * P + P // 2, c * P + P // 2
                centre = view2[cy - 1:cy + 1, cx - 1:cx + 1].mean(axis=(0, 1))
                y = centre[0] + .5                  # original image coords
                u = centre[1] + .5
                x1 = W - u if res['flips'][0] else u
                gh = (y - i1) / h1 * G - .5
                gw = (x1 - j1) / w1 * G - .5
                assert abs(pos_h[0, r * G + c].item() - gh) < .1
                assert abs(pos_w[0, r * G + c].item() - gw) < .1
    assert seen_flips == {True, False}


def test_pipeline_packs_views_mask_and_geometry():
    pipeline = Compose([
        TRANSFORMS.build(cfg) for cfg in [
            dict(type='SIMTwoViews', size=224),
            dict(type='BlockwiseMaskGenerator', input_size=224, patch_size=16,
                 num_masking_patches=118, exact_count=True),
            dict(type='PackInputs',
                 algorithm_keys=['mask', 'crop_boxes', 'flips', 'img_width']),
        ]
    ])
    np.random.seed(0)
    img = np.random.randint(0, 256, (180, 260, 3), np.uint8)
    for _ in range(3):
        out = pipeline(dict(img=img.copy()))
        views, sample = out['inputs'], out['data_samples']
        assert [tuple(v.shape) for v in views] == [(3, 224, 224)] * 2
        assert int(torch.as_tensor(sample.mask).sum()) == 118
        assert sample.crop_boxes.shape == (2, 4)
        assert sample.img_width == 260
