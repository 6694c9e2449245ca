"""ViTDet's backbone (WindowedViT): window partition, window attention,
decomposed relative position, sizes, loading MaskedViT pre-training
checkpoints, and the ViTDet Mask R-CNN configs."""
import copy

import pytest
import torch
from mmengine import Config
from mmengine.registry import DefaultScope, init_default_scope

from mmmim.models.backbones import WindowedViT
from mmmim.models.backbones.windowed_vit import (WindowedBlock,
                                                 default_global_blocks,
                                                 window_partition,
                                                 window_unpartition)
from .conftest import requires_fashion_mnist
from .test_transfer_loading import TINY, make_tiny_mae_checkpoint

BENCH = 'configs/benchmarks/mask_rcnn'
VITDET = ['mae_vit-base-p16_vitdet_mask-rcnn_lsj-100e_coco.py',
          'mae_vit-large-p16_vitdet_mask-rcnn_lsj-100e_coco.py']


def test_window_partition_pads_and_inverts_exactly():
    x = torch.arange(2 * 10 * 7 * 3, dtype=torch.float32).reshape(2, 10, 7, 3)
    windows, pad_hw = window_partition(x, 4)
    assert pad_hw == (12, 8)
    assert windows.shape == (2 * 3 * 2, 4, 4, 3)
    # window (row 1, col 1) of image 1 is the padded slice [4:8, 4:8]
    padded = torch.zeros(2, 12, 8, 3)
    padded[:, :10, :7] = x
    assert torch.equal(windows[1 * 6 + 1 * 2 + 1], padded[1, 4:8, 4:8])
    # the last window row holds two rows of zero padding
    assert torch.equal(windows[2 * 2], padded[0, 8:12, 0:4])
    assert windows[2 * 2, 2:].abs().sum() == 0
    assert torch.equal(window_unpartition(windows, 4, pad_hw, (10, 7)), x)


def _block(window_size, grid=8, dim=16):
    torch.manual_seed(0)
    blk = WindowedBlock(embed_dims=dim, num_heads=2,
                        feedforward_channels=32, use_rel_pos=True,
                        window_size=window_size, input_size=(grid, grid))
    with torch.no_grad():  # non-zero relative position tables
        for p in blk.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return blk.eval()


def test_window_attention_is_global_attention_per_window():
    windowed = _block(window_size=4)
    # relative position tables are sized by the window / the grid
    assert windowed.attn.rel_pos_h.shape == (7, 8)
    glob = _block(window_size=0, grid=4)  # a 4 x 4 "image" = one window
    assert glob.attn.rel_pos_h.shape == (7, 8)
    glob.load_state_dict(windowed.state_dict())
    x = torch.randn(1, 8, 8, 16)
    with torch.no_grad():
        out = windowed(x)
        for r in range(2):
            for c in range(2):
                sub = x[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4]
                torch.testing.assert_close(
                    out[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4], glob(sub),
                    rtol=1e-5, atol=1e-6)
        # tokens outside a window do not reach it; global blocks mix all
        y = x.clone()
        y[:, 4:, 4:] += 1.
        assert torch.equal(windowed(y)[:, :4, :4], out[:, :4, :4])
        full = _block(window_size=0, grid=8)
        assert not torch.allclose(full(y)[:, :4, :4], full(x)[:, :4, :4])


def test_relative_position_changes_attention():
    blk = _block(window_size=0, grid=4)
    x = torch.randn(1, 4, 4, 16)
    with torch.no_grad():
        out = blk(x)
        blk.attn.rel_pos_h.zero_()
        blk.attn.rel_pos_w.zero_()
        assert not torch.allclose(blk(x), out)


def test_drop_path_on_both_branches():
    blk = WindowedBlock(embed_dims=16, num_heads=2, feedforward_channels=32,
                        drop_path_rate=0.3, use_rel_pos=True, window_size=0,
                        input_size=(4, 4))
    assert blk.drop_path.drop_prob == pytest.approx(0.3)
    assert blk.ffn.dropout_layer.drop_prob == pytest.approx(0.3)


@pytest.mark.parametrize('arch,num_params,globals_', [
    # patch embed + pos table (224 grid + cls row) + blocks + rel-pos tables
    # (window: 2 x 27 x 64, global at 1024: 2 x 127 x 64 per block)
    ('base', 590592 + 197 * 768 + 12 * 7087872 + 8 * 3456 + 4 * 16256,
     (2, 5, 8, 11)),
    ('large', 787456 + 197 * 1024 + 24 * 12596224 + 20 * 3456 + 4 * 16256,
     (5, 11, 17, 23)),
    ('huge', 984320 + 197 * 1280 + 32 * 19677440 + 28 * 2 * 27 * 80 +
     4 * 2 * 127 * 80, (7, 15, 23, 31)),
])
def test_vitdet_sizes(arch, num_params, globals_):
    with torch.device('meta'):
        model = WindowedViT(arch=arch, img_size=1024, patch_size=16)
    assert sum(p.numel() for p in model.parameters()) == num_params
    assert default_global_blocks(model.num_layers) == globals_
    for i, layer in enumerate(model.layers):
        assert layer.window_size == (0 if i in globals_ else 14)
        side = 127 if i in globals_ else 27
        assert layer.attn.rel_pos_h.shape[0] == side
    assert model.cls_token is None
    assert model.pos_embed.shape[1] == 197


def test_forward_shapes_and_pos_interpolation():
    model = WindowedViT(arch=TINY, img_size=64, patch_size=4,
                        pretrain_img_size=32, window_size=4,
                        window_block_indexes=[0], out_indices=(0, 1))
    model.init_weights()
    outs = model(torch.randn(2, 3, 40, 56))  # grid 10 x 14: padded windows
    assert [tuple(o.shape) for o in outs] == [(2, 32, 10, 14)] * 2
    with pytest.raises(ValueError, match='no mask'):
        model(torch.randn(1, 3, 32, 32), mask=torch.zeros(1, 64))


def test_loads_mae_checkpoint_every_key_accounted_for(tmp_path):
    path = str(tmp_path / 'mae_tiny.pth')
    ref = make_tiny_mae_checkpoint(path)  # pos table on an 8 x 8 grid
    # pre-training grid kept (32 px / 4) and a larger one (interpolated)
    for pretrain_img_size, adapted in ((32, False), (48, True)):
        model = WindowedViT(
            arch=TINY, img_size=64, patch_size=4,
            pretrain_img_size=pretrain_img_size, window_size=4,
            window_block_indexes=[0],
            init_cfg=dict(type='Pretrained', checkpoint=path,
                          prefix='backbone.'))
        model.init_weights()
        report = model.pretrained_load_report
        assert sorted(report.missing) == sorted(
            f'layers.{i}.attn.rel_pos_{a}' for i in range(2)
            for a in 'hw')
        assert sorted(report.unexpected) == [
            'cls_token', 'ln1.bias', 'ln1.weight']
        assert not report.mismatched
        state = model.state_dict()
        for k, v in state.items():
            if 'rel_pos' in k:
                assert torch.equal(v, torch.zeros_like(v)), k
            elif k != 'pos_embed' or not adapted:
                assert torch.equal(v, ref[k]), k
        if adapted:
            assert state['pos_embed'].shape == (1, 1 + 12 * 12, 32)
            assert any('pos_embed' in a for a in report.adapted)


@pytest.mark.parametrize('cfg_file', VITDET)
def test_vitdet_config_values(cfg_file):
    cfg = Config.fromfile(f'{BENCH}/{cfg_file}')
    bb = cfg.model.backbone
    large = 'large' in cfg_file
    assert bb.type == 'mmpretrain.WindowedViT'
    assert (bb.img_size, bb.pretrain_img_size, bb.window_size) == (1024, 224,
                                                                  14)
    depth = 24 if large else 12
    globals_ = default_global_blocks(depth)
    assert bb.window_block_indexes == [
        i for i in range(depth) if i not in globals_]
    assert bb.drop_path_rate == (0.4 if large else 0.1)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == (
        0.8 if large else 0.7)
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.1
    assert cfg.train_dataloader.batch_size * 16 == 64
    assert cfg.train_cfg.max_iters == 184375
    assert cfg.param_scheduler[1].milestones == [163889, 177546]
    resize = [t for t in cfg.train_dataloader.dataset.pipeline
              if t.type == 'RandomResize'][0]
    assert resize.ratio_range == (0.1, 2.0) and resize.scale == (1024, 1024)
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    # ViTDet Mask R-CNN: 111M (B) / 331M (L) parameters
    total = sum(p.numel() for p in model.parameters())
    assert total == (330684656 if large else 110895792)


def test_vitdet_weight_decay_and_layer_decay_groups():
    cfg = Config.fromfile(f'{BENCH}/{VITDET[0]}')
    cfg.model.backbone.update(arch=TINY, img_size=64, patch_size=4,
                              pretrain_img_size=32, window_size=4,
                              window_block_indexes=[0], init_cfg=None)
    cfg.model.neck.update(in_channels=32, out_channels=32)
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    model = MODELS.build(cfg.model)
    ow = copy.deepcopy(cfg.optim_wrapper)
    ow.type = 'OptimWrapper'
    with DefaultScope.overwrite_default_scope('mmdet'):
        optim = build_optim_wrapper(model, ow).optimizer
    groups = {n: g for g in optim.param_groups for n in g['param_names']}
    wd = {n: g['weight_decay'] for n, g in groups.items()}
    assert wd['backbone.pos_embed'] == 0.
    assert wd['backbone.layers.0.ln1.weight'] == 0.  # norms: no decay
    assert wd['backbone.layers.0.ln1.bias'] == 0.
    assert wd['neck.stages.0.1.weight'] == 0.  # the pyramid's LN2d
    assert wd['roi_head.bbox_head.shared_convs.0.ln.weight'] == 0.
    assert wd['backbone.layers.0.attn.qkv.bias'] == 0.1  # biases: decayed
    assert wd['backbone.layers.0.attn.rel_pos_h'] == 0.1
    assert wd['rpn_head.rpn_conv.0.conv.bias'] == 0.1
    # detectron2's layer ids: 0 = patch embed / pos, i + 1 = block i, rest 3
    scale = {n: g['lr_scale'] for n, g in groups.items()}
    assert scale['backbone.pos_embed'] == pytest.approx(0.7**3)
    assert scale['backbone.layers.1.attn.rel_pos_w'] == pytest.approx(0.7)
    assert scale['neck.stages.0.0.weight'] == 1.0


@requires_fashion_mnist
def test_vitdet_config_one_iteration(tmp_path):
    from .test_transfer_configs import _batch_from_dataset, _step
    from mmmim.datasets.canvas import make_canvas_sets
    canvas = make_canvas_sets(str(tmp_path), num_train=2, num_val=1, size=64)
    cfg = Config.fromfile(f'{BENCH}/{VITDET[0]}')
    cfg.model.backbone.update(arch=TINY, img_size=64, patch_size=4,
                              pretrain_img_size=32, window_size=4,
                              window_block_indexes=[0], init_cfg=None)
    cfg.model.data_preprocessor.batch_augments[0].size = (64, 64)
    cfg.model.neck.update(in_channels=32, out_channels=32)
    cfg.model.rpn_head.update(in_channels=32, feat_channels=32)
    roi = cfg.model.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.mask_roi_extractor.out_channels = 32
    roi.bbox_head.update(in_channels=32, conv_out_channels=32,
                         fc_out_channels=32)
    roi.mask_head.update(in_channels=32, conv_out_channels=32)
    ds = cfg.train_dataloader.dataset
    ds.update(data_root=canvas['coco_root'] + '/',
              ann_file='annotations/instances_train.json',
              data_prefix=dict(img='train/'),
              filter_cfg=dict(filter_empty_gt=True, min_size=8),
              metainfo=dict(classes=('T-shirt_top', 'Trouser', 'Pullover',
                                     'Dress', 'Coat', 'Sandal', 'Shirt',
                                     'Sneaker', 'Bag', 'Ankle boot')))
    for t in ds.pipeline:
        if t.type in ('RandomResize', 'RandomCrop', 'Pad'):
            t[{'RandomResize': 'scale', 'RandomCrop': 'crop_size',
               'Pad': 'size'}[t.type]] = (64, 64)
    data = _batch_from_dataset(ds, 'mmdet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model)
        model.init_weights()
        feats = model.extract_feat(
            model.data_preprocessor(copy.deepcopy(data))['inputs'])
    assert [f.shape[-1] for f in feats] == [64, 32, 16, 8, 4]
    losses, changed = _step(model, cfg, data, 'mmdet')
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert key in losses
    assert changed['backbone.layers.0.attn.rel_pos_h']
    assert changed['backbone.layers.1.attn.qkv.weight']
