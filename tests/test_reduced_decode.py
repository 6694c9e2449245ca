"""DecodeRandomResizedCrop: the crops of LoadImageChecked + RandomResizedCrop
(same random draws, boxes in full-resolution pixels), with JPEGs decoded at
1/2, 1/4 or 1/8 size when the crop is at least twice the output size."""
import numpy as np
import pytest
from PIL import Image

from mmpretrain.registry import TRANSFORMS
from mmmim.datasets.transforms import ImageLoadError

CROP = dict(scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow',
            interpolation='bicubic')


def photo(size):
    from skimage import data
    return Image.fromarray(data.astronaut()).resize(size, Image.BICUBIC)


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    root = tmp_path_factory.mktemp('jpegs')
    paths = {}
    for w, h in ((500, 375), (1600, 1200)):
        paths[w] = str(root / f'{w}.jpg')
        photo((w, h)).save(paths[w], quality=90)
    paths['png'] = str(root / 'photo.png')
    photo((300, 200)).save(paths['png'])
    return paths


def config_crop(path, seed):
    """What the config's two transforms give, and the box they drew."""
    load = TRANSFORMS.build(dict(type='LoadImageChecked'))
    crop = TRANSFORMS.build(dict(type='RandomResizedCrop', **CROP))
    results = load(dict(img_path=path))
    np.random.seed(seed)
    oh, ow, h, w = crop.rand_crop_params(results['img'])
    np.random.seed(seed)
    return crop(results)['img'], (ow, oh, ow + w, oh + h)


def fast_crop(path, seed, **kwargs):
    np.random.seed(seed)
    t = TRANSFORMS.build(dict(type='DecodeRandomResizedCrop', **CROP,
                              **kwargs))
    return t(dict(img_path=path))


def test_without_reduction_it_is_the_config_pipeline(jpegs):
    # a 500 x 375 photo's crops are under 448 px: never reduced
    for seed in range(6):
        out = fast_crop(jpegs[500], seed)
        ref, box = config_crop(jpegs[500], seed)
        assert out['decode_reduction'] == 1
        assert out['crop_bbox'] == box
        assert out['img'].shape == (224, 224, 3)
        np.testing.assert_array_equal(out['img'], ref)
    # a PNG goes through the two transforms
    out = fast_crop(jpegs['png'], 0)
    np.testing.assert_array_equal(out['img'], config_crop(jpegs['png'], 0)[0])


def test_reduced_decode_same_boxes_close_pixels(jpegs):
    reductions = set()
    for seed in range(8):
        out = fast_crop(jpegs[1600], seed)
        ref, box = config_crop(jpegs[1600], seed)
        # the same crop, drawn in full-resolution pixels
        assert out['crop_bbox'] == box
        assert out['ori_shape'] == (1200, 1600)
        r = out['decode_reduction']
        x1, y1, x2, y2 = box
        # the reduced image still covers the crop at 224 px or more
        assert min(x2 - x1, y2 - y1) / r >= 224
        reductions.add(r)
        diff = np.abs(out['img'].astype(float) - ref)
        assert diff.mean() < 1.5, (seed, r, diff.mean())
        # BGR like cv2's decoding: channel means agree in order
        np.testing.assert_allclose(out['img'].mean((0, 1)),
                                   ref.mean((0, 1)), atol=1.0)
    assert reductions >= {2, 4}
    same = fast_crop(jpegs[1600], 3, reduced_decode=False)
    np.testing.assert_array_equal(same['img'], config_crop(jpegs[1600], 3)[0])


def test_bad_files_are_named(tmp_path, jpegs):
    data = open(jpegs[500], 'rb').read()
    truncated = tmp_path / 'truncated.jpg'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageLoadError, match='truncated.jpg'):
        fast_crop(str(truncated), 0)
    skip = TRANSFORMS.build(dict(type='DecodeRandomResizedCrop', **CROP,
                                 on_error='skip'))
    assert skip(dict(img_path=str(tmp_path / 'missing.jpg'))) is None
    with pytest.raises(ValueError, match='pillow'):
        TRANSFORMS.build(dict(type='DecodeRandomResizedCrop', scale=224,
                              backend='cv2'))
