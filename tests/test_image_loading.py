"""Bad data: unreadable / truncated images (a JPEG cut mid-scan included)
name the file (or are skipped when configured); grayscale, RGBA and 16-bit
images load as 3-channel uint8."""
import cv2
import numpy as np
import pytest
from mmengine.dataset import BaseDataset

from mmmim.datasets.transforms import ImageLoadError, LoadImageChecked


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    paths = {}
    paths['good'] = tmp_path / 'good.jpg'
    cv2.imwrite(str(paths['good']), rgb)
    paths['gray'] = tmp_path / 'gray.png'
    cv2.imwrite(str(paths['gray']), rgb[..., 0])
    paths['rgba'] = tmp_path / 'rgba.png'
    cv2.imwrite(str(paths['rgba']), np.dstack([rgb, np.full_like(rgb[..., 0],
                                                                 128)]))
    paths['16bit'] = tmp_path / 'deep.png'
    cv2.imwrite(str(paths['16bit']), rgb.astype(np.uint16) * 257)
    data = paths['good'].read_bytes()
    paths['truncated'] = tmp_path / 'truncated.jpg'
    paths['truncated'].write_bytes(data[:len(data) // 2])
    # cut in the middle of the compressed data, the end-of-image marker kept
    scan = data.index(b'\xff\xda')
    paths['cut_mid_scan'] = tmp_path / 'cut_mid_scan.jpg'
    paths['cut_mid_scan'].write_bytes(
        data[:(scan + len(data)) // 2] + b'\xff\xd9')
    paths['grey'] = tmp_path / 'grey.jpg'  # an intact image that is grey
    cv2.imwrite(str(paths['grey']), np.full_like(rgb, 128))
    paths['garbage'] = tmp_path / 'garbage.png'
    paths['garbage'].write_bytes(b'this is not an image')
    paths['empty'] = tmp_path / 'empty.jpg'
    paths['empty'].write_bytes(b'')
    return rgb, paths


def load(path, **kwargs):
    return LoadImageChecked(**kwargs)(dict(img_path=str(path)))


def test_grayscale_rgba_16bit_load_as_uint8_rgb_layout(images):
    rgb, paths = images
    for name in ('gray', 'rgba', '16bit'):
        img = load(paths[name])['img']
        assert img.shape == (24, 32, 3) and img.dtype == np.uint8, name
    np.testing.assert_array_equal(load(paths['gray'])['img'][..., 2],
                                  rgb[..., 0])
    np.testing.assert_array_equal(load(paths['rgba'])['img'], rgb)
    np.testing.assert_array_equal(load(paths['16bit'])['img'], rgb)


@pytest.mark.parametrize('name,reason', [
    ('truncated', 'truncated JPEG'),
    ('cut_mid_scan', 'corrupt JPEG, decoded grey-filled (Corrupt JPEG data: '
     'premature end of data segment)'),
    ('garbage', 'not a decodable image'),
    ('empty', 'empty file'),
])
def test_bad_file_raises_naming_it(images, name, reason):
    _, paths = images
    with pytest.raises(ImageLoadError) as err:
        load(paths[name])
    assert str(paths[name]) in str(err.value) and reason in str(err.value)


def test_grey_images_that_are_intact_load(images):
    _, paths = images
    assert (load(paths['grey'])['img'] == 128).all()


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ImageLoadError, match='nope.jpg'):
        load(tmp_path / 'nope.jpg')


class Folder(BaseDataset):

    def __init__(self, files, **kwargs):
        self.files = files
        super().__init__(**kwargs)

    def load_data_list(self):
        return [dict(img_path=str(f)) for f in self.files]


def test_skip_mode_counts_and_dataset_draws_another(images):
    _, paths = images
    loader = LoadImageChecked(on_error='skip')
    dataset = Folder([paths['truncated'], paths['good']], pipeline=[loader])
    item = dataset[0]  # the bad file is skipped, another sample comes back
    assert item['img_path'] == str(paths['good'])
    assert loader.num_skipped >= 1

    strict = Folder([paths['truncated'], paths['good']],
                    pipeline=[LoadImageChecked()])
    with pytest.raises(ImageLoadError, match='truncated.jpg'):
        strict[0]
