"""A tiny iTPN pre-training checkpoint loads into Mask R-CNN and UperNet.

Backbone and pyramid neck both come from the pre-training checkpoint
(``prefix='backbone.'`` / ``prefix='neck.'``); every parameter must load.
"""
import os.path as osp

import mmdet
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as PRETRAIN_MODELS


TINY_ARCH = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


def _pretrain_model():
    return PRETRAIN_MODELS.build(
        dict(type='iTPNPretrainer',
             backbone=dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=64,
                           patch_size=16),
             neck=dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32,
                       fpn_depth=1),
             decoder=dict(type='iTPNPixelDecoder', num_patches=16,
                          patch_size=16, fpn_dim=32, embed_dim=64, depth=1,
                          num_heads=2),
             head=dict(type='iTPNPixelHead', patch_size=16)))


def _mask_rcnn_cfg(ckpt):
    base = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_',
                    'models', 'mask-rcnn_r50_fpn.py')
    cfg = Config.fromfile(base)
    cfg.merge_from_dict(
        dict(model=dict(
            data_preprocessor=dict(pad_size_divisor=64),
            backbone=dict(
                _delete_=True,
                type='mmpretrain.iTPNBackbone',
                arch=TINY_ARCH,
                img_size=64,
                patch_size=16,
                out_indices=(0, 1, 2),
                init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                              prefix='backbone.')),
            neck=dict(
                _delete_=True,
                type='mmpretrain.iTPNPyramidNeck',
                in_channels=64,
                fpn_dim=32,
                fpn_depth=1,
                out_mode='fpn',
                init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                              prefix='neck.')),
            rpn_head=dict(in_channels=32, feat_channels=32),
            roi_head=dict(
                bbox_roi_extractor=dict(out_channels=32),
                bbox_head=dict(in_channels=32, fc_out_channels=32,
                               num_classes=2),
                mask_roi_extractor=dict(out_channels=32),
                mask_head=dict(num_convs=1, in_channels=32,
                               conv_out_channels=32, num_classes=2)))))
    return cfg


def test_pretraining_checkpoint_loads_into_mask_rcnn(tmp_path):
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmdet.utils import register_all_modules
    from mmengine.structures import InstanceData

    pre = _pretrain_model()
    # perturb every parameter so that a not-loaded one cannot match by chance
    with torch.no_grad():
        for p in pre.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    state = {k: v.detach().clone() for k, v in pre.state_dict().items()}
    assert any(k.startswith('decoder.') for k in state)
    ckpt = str(tmp_path / 'itpn_tiny_pretrain.pth')
    torch.save({'state_dict': state, 'meta': {}}, ckpt)

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_MODELS.build(_mask_rcnn_cfg(ckpt).model)
        det.init_weights()

    for module in (det.backbone, det.neck):
        # mmmim's checked loading leaves its load report on the module
        report = getattr(module, 'pretrained_load_report', None)
        if report is not None:
            assert report.missing == [] and report.unexpected == []
            assert report.mismatched == []
            assert len(report.loaded) == len(module.state_dict())
    # and independently of any report: every tensor equals the checkpoint's
    for name, module in (('backbone', det.backbone), ('neck', det.neck)):
        own = module.state_dict()
        assert own, name
        for key, value in own.items():
            ref = state[f'{name}.{key}']
            torch.testing.assert_close(value, ref, msg=f'{name}.{key}')
        expected = {k[len(name) + 1:] for k in state
                    if k.startswith(name + '.')}
        assert set(own) == expected

    # one training forward on a tiny image
    det.train()
    img = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64),
                                         ori_shape=(64, 64),
                                         pad_shape=(64, 64),
                                         scale_factor=(1., 1.)))
    gt = InstanceData()
    gt.bboxes = torch.tensor([[8., 8., 40., 44.]])
    gt.labels = torch.tensor([1])
    m = torch.zeros(1, 64, 64, dtype=torch.uint8)
    m[0, 8:44, 8:40] = 1
    gt.masks = BitmapMasks(m.numpy(), 64, 64)
    sample.gt_instances = gt
    data = det.data_preprocessor(dict(inputs=[img], data_samples=[sample]),
                                 True)
    losses = det.loss(data['inputs'], data['data_samples'])
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_mask'):
        assert key in losses
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert det.backbone.blocks[0].mlp.fc1.weight.grad is not None
    assert det.neck.split_8to4.reduction.weight.grad is not None


def test_pretraining_checkpoint_loads_into_upernet(tmp_path):
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules
    from mmengine.structures import PixelData

    pre = _pretrain_model()
    state = {k: v.detach().clone() for k, v in pre.state_dict().items()}
    ckpt = str(tmp_path / 'itpn_tiny_pretrain.pth')
    torch.save({'state_dict': state, 'meta': {}}, ckpt)

    register_all_modules(init_default_scope=False)
    bn = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64),
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_val=0, seg_pad_val=255),
        backbone=dict(type='mmpretrain.iTPNBackbone', arch=TINY_ARCH,
                      img_size=64, patch_size=16,
                      init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                                    prefix='backbone.')),
        neck=dict(type='mmpretrain.iTPNPyramidNeck', in_channels=64,
                  fpn_dim=32, fpn_depth=1, out_mode='uper',
                  init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                                prefix='neck.')),
        decode_head=dict(type='UPerHead', in_channels=[48, 64, 96, 96],
                         in_index=[0, 1, 2, 3], pool_scales=(1, 2),
                         channels=16, num_classes=3, norm_cfg=bn,
                         align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss',
                                          loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = SEG_MODELS.build(cfg)
        seg.init_weights()
    for name, module in (('backbone', seg.backbone), ('neck', seg.neck)):
        own = module.state_dict()
        assert set(own) == {k[len(name) + 1:] for k in state
                            if k.startswith(name + '.')}
        for key, value in own.items():
            torch.testing.assert_close(value, state[f'{name}.{key}'])

    seg.train()
    samples, imgs = [], []
    for _ in range(2):  # BatchNorm in the pooling branch needs 2 images
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                             ori_shape=(64, 64),
                                             pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 3, (1, 64, 64), dtype=torch.long))
        samples.append(sample)
        imgs.append(torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8))
    data = seg.data_preprocessor(dict(inputs=imgs, data_samples=samples),
                                 True)
    losses = seg.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['decode.loss_ce'])
