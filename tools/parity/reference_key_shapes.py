"""Parameter names and shapes of reference iTPN models built from the
reference code (no released checkpoint needed), for the parameter-count and
name tests of the large and CLIP-L variants.

Run with the reference's dependencies (REFENV, REFS: see make_fixtures.py),
once per reference folder:

    $REFENV/venv/bin/python tools/parity/reference_key_shapes.py \\
        --refs $REFS --timm-0.3.2 $REFENV/timm032 --subdir itpn_pixel
    $REFENV/venv/bin/python tools/parity/reference_key_shapes.py \\
        --refs $REFS --timm-0.3.2 $REFENV/timm032 --subdir itpn_clip
    $REFENV/venv/bin/python tools/parity/reference_key_shapes.py \\
        --refs $REFS --timm-0.3.2 $REFENV/timm032 --subdir seg

Writes ``tests/data/official_keys/<name>.txt`` (``name<TAB>shape``, one per
line, in the model's ``state_dict`` order, buffers included).
"""
import argparse
import os
import os.path as osp
import sys

import torch

HERE = osp.dirname(osp.abspath(__file__))
OUT = osp.join(HERE, '..', '..', 'tests', 'data', 'official_keys')


def pixel_models():
    from models import models_itpn, models_itpn_mim
    return {
        # itpn_pixel/PRETRAIN.md:19 (--model itpn_large_dec512d8b)
        'itpn_large_pixel_dec512d8b': models_itpn_mim.itpn_large_dec512d8b(),
        # itpn_pixel/FINETUNE.md:58 (--model itpn_large), 1000 classes
        'itpn_large_pixel_ft': models_itpn.itpn_large(num_classes=1000),
    }


def clip_models():
    import modeling_finetune
    import modeling_pretrain
    from clip.model import VisionTransformer
    large = modeling_pretrain.clip_tpn_large_2240_patch16_224
    return {
        # itpn_clip/README.md:58-73 (iTPN-L/16 with CLIP-B)
        'itpn_large_clip_b16': large(
            drop_path_rate=0.2, init_values=0.1, teacher_dim=512),
        # itpn_clip/README.md:34-49 (iTPN-B with CLIP-L; teacher_dim 768,
        # run_itpn_pretraining.py:38-39)
        'itpn_base_clip_l14': modeling_pretrain.clip_tpn_base_3324_patch16_224(
            drop_path_rate=0.1, init_values=0.1, teacher_dim=768),
        # itpn_clip/README.md:77-96 (iTPN-L/16 with CLIP-L)
        'itpn_large_clip_l14': large(
            drop_path_rate=0.2, init_values=0.1, teacher_dim=768),
        # itpn_clip/README.md:151-176 (fine-tuning iTPN-L/16), the
        # run_itpn_finetuning.py defaults: layer scale 0.1, rel pos, abs pos
        'itpn_large_clip_ft': modeling_finetune.itpn_large_2240_patch16_224(
            num_classes=1000, drop_path_rate=0.25, ape=True, rpe=True,
            use_mean_pooling=True, init_values=0.1),
        # OpenAI CLIP ViT-L/14 visual tower (clip/model.py:226-244 with the
        # ViT-L/14 widths: 224 px, patch 14, width 1024, 24 layers, 16 heads,
        # output 768)
        'clip_vit_l14_visual': VisionTransformer(224, 14, 1024, 24, 16, 768),
    }


def seg_models():
    """The segmentation backbone (HiViT + pyramid, seg/backbone/iTPN.py);
    its mmseg / mmcv_custom imports (registry, logger, checkpoint loader)
    are not needed to build it and are stood in for."""
    import types
    registry = types.SimpleNamespace(
        register_module=lambda *a, **k: (lambda cls: cls))
    for name, attrs in (
            ('mmcv_custom', dict(load_checkpoint=None)),
            ('mmseg', {}), ('mmseg.utils', dict(get_root_logger=None)),
            ('mmseg.models', {}),
            ('mmseg.models.builder', dict(BACKBONES=registry))):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
    from backbone.iTPN import iTPN
    return {
        # seg/configs/itpn/pixel_upernet_itpn_large_12_512_slide_160k_
        # ade20k_pt2ft.py:23-40
        'itpn_large_seg_upernet_backbone': iTPN(
            img_size=512, patch_size=16, embed_dim=768, mlp_depth1=2,
            mlp_depth2=2, depth=40, num_heads=12, mlp_ratio=4, fpn_dim=256,
            fpn_depth=2, qkv_bias=True, ape=True, rpe=True,
            drop_path_rate=0.2, num_outs=4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--refs', required=True)
    parser.add_argument('--timm-0.3.2', dest='timm', required=True)
    parser.add_argument('--subdir', choices=['itpn_pixel', 'itpn_clip', 'seg'],
                        required=True)
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    from make_fixtures import install_torch_six
    install_torch_six()
    src = osp.join(osp.abspath(args.refs), 'iTPN', args.subdir)
    sys.path[:0] = [args.timm, src]
    os.chdir(src)
    torch.set_num_threads(1)
    models = dict(itpn_pixel=pixel_models, itpn_clip=clip_models,
                  seg=seg_models)[args.subdir]()
    os.makedirs(args.out, exist_ok=True)
    for name, model in models.items():
        path = osp.join(args.out, name + '.txt')
        with open(path, 'w') as f:
            for key, value in model.state_dict().items():
                f.write(f'{key}\t{tuple(value.shape)}\n')
        n = sum(p.numel() for p in model.parameters())
        print(f'{name}: {len(model.state_dict())} tensors, {n} parameters '
              f'-> {path}')


if __name__ == '__main__':
    main()
