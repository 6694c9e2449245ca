"""Decoding on the model's device: DeviceDecodeRandomResizedCrop draws the
config pipeline's crops and flips, DeviceDecodeDataPreprocessor decodes,
crops, resizes and flips them to within a grey level of the config's
pipeline, and the device-decode MAE config trains as the MAE config does."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.runner import Runner
from PIL import Image

from mmpretrain.registry import MODELS, TRANSFORMS
from mmmim.datasets.transforms import ImageLoadError
from .conftest import DEVICES

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / 'configs/mae/mae-vit-base_pixel_1600e.py'
DEVICE_DECODE = ROOT / 'configs/mae/mae-vit-base_pixel_1600e_device-decode.py'
# every config with decoding on the device, and the config it varies
PAIRS = [(BASE, DEVICE_DECODE)] + [
    (ROOT / f'configs/{name}.py', ROOT / f'configs/{name}_device-decode.py')
    for name in ('hpm/hpm-vit-base_pixel_800e', 'itpn/itpn-base_pixel_800e')]


def photo(size, mode='RGB'):
    from skimage import data
    return Image.fromarray(data.astronaut()).resize(
        size, Image.BICUBIC).convert(mode)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('device_decode')
    paths = {}
    for w, h in ((500, 375), (1000, 750)):
        paths[w] = str(root / f'{w}.JPEG')
        photo((w, h)).save(paths[w], quality=90)
    paths['gray'] = str(root / 'gray.JPEG')
    photo((400, 300), 'L').save(paths['gray'], quality=90)
    # nvJPEG decodes these in software, one by one
    paths['progressive'] = str(root / 'progressive.JPEG')
    photo((600, 450)).save(paths['progressive'], quality=90,
                           progressive=True)
    # decoded by the workers: a PNG, a CMYK JPEG
    paths['png'] = str(root / 'photo.png')
    photo((300, 200)).save(paths['png'])
    paths['cmyk'] = str(root / 'cmyk.JPEG')
    photo((320, 240), 'CMYK').save(paths['cmyk'], quality=90)
    return paths


#: the test files: JPEGs the device decodes, files the workers decode
KINDS = (500, 1000, 'gray', 'progressive', 'png', 'cmyk')


def pipelines(pair=(BASE, DEVICE_DECODE)):
    """The two configs' pipelines (mask generator and packing included)."""
    configs = [Config.fromfile(str(p)) for p in pair]
    return [Compose([TRANSFORMS.build(t)
                     for t in cfg.train_dataloader.dataset.pipeline])
            for cfg in configs]


def preprocessors():
    return [MODELS.build(Config.fromfile(str(p)).data_preprocessor)
            for p in (BASE, DEVICE_DECODE)]


def both_batches(paths, seed=0, pair=(BASE, DEVICE_DECODE)):
    """The config pipeline's and the device-decode pipeline's samples for
    the same random draws (image i drawn after ``np.random.seed(seed +
    i)``)."""
    base, device = pipelines(pair)
    out = []
    for pipeline in (base, device):
        samples = []
        for i, p in enumerate(paths):
            np.random.seed(seed + i)
            samples.append(pipeline(dict(img_path=p)))
        out.append(samples)
    return out


def config_box(path, seed):
    """The box the config's RandomResizedCrop draws after ``seed``."""
    crop = TRANSFORMS.build(dict(
        type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
        backend='pillow', interpolation='bicubic'))
    img = TRANSFORMS.build(dict(type='LoadImageChecked'))(
        dict(img_path=path))['img']
    np.random.seed(seed)
    oh, ow, h, w = crop.rand_crop_params(img)
    return (ow, oh, ow + w, oh + h)


@pytest.mark.parametrize('pair', PAIRS, ids=[b.stem for b, _ in PAIRS])
def test_same_crops_flips_and_masks_as_the_config_pipeline(files, pair):
    paths = [files[k] for k in KINDS] * 3
    base, device = both_batches(paths, pair=pair)
    flips = set()
    for i, (p, a, b) in enumerate(zip(paths, base, device)):
        sa, sb = a['data_samples'], b['data_samples']
        assert sb.flip == sa.flip
        flips.add(sb.flip)
        assert ('mask' in sa) == ('mask' in sb)  # HPM: masks by the model
        if 'mask' in sa:
            np.testing.assert_array_equal(sb.mask, sa.mask)
        if p in (files['png'], files['cmyk']):  # decoded by the workers
            np.testing.assert_array_equal(b['inputs'], a['inputs'])
        else:
            assert b['inputs'].dim() == 1 and b['inputs'].dtype == torch.uint8
            assert bytes(b['inputs'].numpy()) == Path(p).read_bytes()
            assert tuple(sb.img_shape) == (224, 224)
            assert sb.ori_shape == sa.ori_shape
            # the config's box, drawn from the size in the header
            assert tuple(sb.crop_bbox) == config_box(p, i)
    assert flips == {True, False}


@pytest.mark.parametrize('device', DEVICES)
def test_device_decoded_batch_within_a_grey_level_of_the_config(files,
                                                                device):
    paths = [files[k] for k in KINDS] * 2
    base, device_samples = both_batches(paths, seed=3)
    base_pre, device_pre = preprocessors()
    ref = base_pre(pseudo_collate(base) | dict(
        inputs=torch.stack([s['inputs'] for s in base])))['inputs']
    out = device_pre.to(device)(pseudo_collate(device_samples))
    assert out['inputs'].device.type == device
    diff = ((out['inputs'].cpu() - ref) *
            torch.tensor([58.395, 57.12, 57.375])[:, None, None]).abs()
    assert out['inputs'].shape == ref.shape == (len(paths), 3, 224, 224)
    for i, p in enumerate(paths):
        if p in (files['png'], files['cmyk']):
            assert diff[i].max() < 1e-3, p  # the same pixels
        else:
            # on the CPU the same decoded pixels (libjpeg-turbo); torch's
            # antialiased bicubic in float vs Pillow's, which rounds and
            # clips to uint8 between its horizontal and vertical passes:
            # 0.15 grey levels on average, a few pixels on sharp edges more
            # (up to 7 measured). nvJPEG's IDCT and chroma upsampling
            # differ from libjpeg-turbo's (most on colour edges): looser
            # bounds there, still far below a swapped channel or a missed
            # flip (tens of grey levels on average)
            cpu = device == 'cpu'
            assert diff[i].mean() < (0.3 if cpu else 1.5), (p, diff[i].mean())
            assert (diff[i] > 1.01).float().mean() < (1e-3 if cpu else 0.3), p
            assert diff[i].max() <= (10 if cpu else 64), p


def test_other_batches_are_selfsup_preprocessors():
    base_pre, device_pre = preprocessors()
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    for inputs in (x, [x, x.flip(-1)]):  # a batch, two views
        a = base_pre(dict(inputs=inputs, data_samples=None))['inputs']
        b = device_pre(dict(inputs=inputs, data_samples=None))['inputs']
        for u, v in zip(a if isinstance(a, list) else [a],
                        b if isinstance(b, list) else [b]):
            torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_bad_input_is_named(files, tmp_path):
    kwargs = dict(scale=224, backend='pillow', interpolation='bicubic')
    with pytest.raises(ValueError, match="must be 'bicubic'"):
        TRANSFORMS.build(dict(type='DeviceDecodeRandomResizedCrop',
                              **dict(kwargs, interpolation='bilinear')))
    with pytest.raises(ValueError, match='flip_prob'):
        TRANSFORMS.build(dict(type='DeviceDecodeRandomResizedCrop',
                              flip_prob=1.5, **kwargs))
    # the workers check what they can without decoding
    truncated = tmp_path / 'truncated.JPEG'
    truncated.write_bytes(Path(files[500]).read_bytes()[:5000])
    t = TRANSFORMS.build(dict(type='DeviceDecodeRandomResizedCrop', **kwargs))
    with pytest.raises(ImageLoadError, match='truncated.JPEG.*truncated'):
        t(dict(img_path=str(truncated)))
    skip = TRANSFORMS.build(dict(type='DeviceDecodeRandomResizedCrop',
                                 on_error='skip', **kwargs))
    assert skip(dict(img_path=str(truncated))) is None
    assert skip.loader.num_skipped == 1

    _, device = pipelines()
    _, pre = preprocessors()
    sample = device(dict(img_path=files[500]))
    # data samples without the crop box (PackInputs' default meta keys)
    del sample['data_samples'].crop_bbox
    with pytest.raises(KeyError, match="meta_keys=.*'crop_bbox'"):
        pre(pseudo_collate([sample]))
    # bytes the decoder rejects (a JPEG header on garbage): the file named
    bad = device(dict(img_path=files[500]))
    bad['inputs'] = bad['inputs'][:300].clone()
    bad['data_samples'].set_metainfo(dict(img_path='bad.JPEG'))
    good = device(dict(img_path=files[1000]))
    with pytest.raises(ImageLoadError, match='cannot decode bad.JPEG'):
        pre(pseudo_collate([good, bad]))


def test_files_the_device_decoder_rejects_are_decoded_on_the_cpu(
        files, monkeypatch):
    """nvJPEG refuses some valid JPEGs (unusual chroma subsampling): such a
    file is decoded on the CPU, named in a warning. Simulated here by a
    device decoder (on the meta device) that rejects one file."""
    import torchvision.io

    import mmmim.models.data_preprocessors as dp
    real = torchvision.io.decode_jpeg
    rejected = Path(files['progressive']).read_bytes()
    calls, logged = [], []

    def device_decoder(data, mode, device=torch.device('cpu')):
        calls.append((device.type, isinstance(data, list)))
        if device.type == 'cpu':
            return real(data, mode=mode)
        batch = data if isinstance(data, list) else [data]
        if any(bytes(t.numpy()) == rejected for t in batch):
            raise RuntimeError('Unknown chroma subsampling')
        out = [real(t, mode=mode).to(device) for t in batch]
        return out if isinstance(data, list) else out[0]

    monkeypatch.setattr(torchvision.io, 'decode_jpeg', device_decoder)
    monkeypatch.setattr(dp, 'print_log', lambda msg, **kw: logged.append(msg))
    paths = [files[500], files['progressive'], files['gray']]
    encoded = [torch.frombuffer(bytearray(Path(p).read_bytes()),
                                dtype=torch.uint8) for p in paths]
    images = dp.decode_jpegs(encoded, torch.device('meta'), paths)
    assert [img.device.type for img in images] == ['meta'] * 3
    assert [tuple(img.shape) for img in images] == [
        (3, 375, 500), (3, 450, 600), (3, 300, 400)]
    # the batch, then one by one; the rejected file again on the CPU
    assert calls == [('meta', True), ('meta', False), ('meta', False),
                     ('cpu', False), ('meta', False)]
    assert len(logged) == 1 and 'progressive.JPEG: not decodable on meta' \
        in logged[0] and 'decoded on the CPU' in logged[0]


class LossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss']))


def tiny_run(config, folder, work_dir):
    """Three steps of a config with a tiny ViT on the JPEGs of ``folder``."""
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.arch = dict(embed_dims=32, num_layers=1, num_heads=2,
                                   feedforward_channels=64)
    cfg.model.neck.update(embed_dim=32, decoder_embed_dim=16,
                          decoder_depth=1, decoder_num_heads=2)
    cfg.train_dataloader = dict(
        batch_size=4, num_workers=0,
        collate_fn=cfg.train_dataloader.collate_fn,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CustomDataset', data_root=str(folder),
                     with_label=False,
                     pipeline=cfg.train_dataloader.dataset.pipeline))
    cfg.optim_wrapper = dict(
        optimizer=dict(type='AdamW', lr=1e-3))
    cfg.param_scheduler = []
    cfg.train_cfg = dict(type='IterBasedTrainLoop',
                         max_iters=3)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    return recorder.losses


def test_device_decode_config_trains_as_the_mae_config(files, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(12):
        photo((320 + 16 * i, 240 + 8 * i)).save(
            folder / f'{i:02d}.JPEG', quality=90)
    base = tiny_run(BASE, folder, tmp_path / 'base')
    device = tiny_run(DEVICE_DECODE, folder, tmp_path / 'device')
    assert len(base) == len(device) == 3
    # the same crops, flips, masks and initial weights; pixels within a
    # grey level: the same losses to 1e-3 (measured: 2e-5)
    np.testing.assert_allclose(device, base, rtol=1e-3)
    assert base[0] != base[1]  # and the losses are those of different steps
