"""Every config builds at full size on the meta device, and every recipe
table of docs/recipes.md matches the config it documents (see
tests/recipe_values.py for how each row is read)."""
import copy
import os.path as osp
import re

import pytest

from .recipe_values import (ROOT, VALUES, all_configs, build_meta,
                            learning_rate, no_decay, recipe_values)

DOC = osp.join(ROOT, 'docs', 'recipes.md')


def doc_tables(path=DOC):
    """{config: {setting: mmmim value}} from the tables of docs/recipes.md.

    A table belongs to the config named in backticks on its own line above
    it; rows are ``| setting | mmmim | reference | source |``.
    """
    tables, config = {}, None
    with open(path) as f:
        for line in f:
            m = re.fullmatch(r'`(configs/[^`]+\.py)`\s*', line)
            if m:
                config = m.group(1)
                tables[config] = {}
                continue
            cells = [c.strip() for c in line.strip().split('|')[1:-1]]
            if config and len(cells) == 4 and cells[0] in VALUES:
                tables[config][cells[0]] = cells[1]
    return tables


TABLES = doc_tables()


@pytest.mark.parametrize('config', all_configs())
def test_config_builds_on_meta(config):
    cfg, model, groups = build_meta(config)
    params = list(model.parameters())
    assert params
    backbone = cfg.model.get('backbone', {}).get('type', '')
    if 'Swin' not in backbone:  # see build_meta
        assert all(p.is_meta for p in params)
    if groups is not None:
        grouped = {id(p) for g in groups for p in g['params']}
        trainable = {id(p) for p in params if p.requires_grad}
        assert grouped == trainable  # every trainable parameter optimised


def test_doc_lists_real_configs():
    assert len(TABLES) >= 20
    for config, rows in TABLES.items():
        assert osp.isfile(osp.join(ROOT, config)), config
        assert len(rows) >= 8, config


@pytest.mark.parametrize('config', sorted(TABLES))
def test_recipe_table_matches_config(config):
    values = recipe_values(config)
    drift = {key: (doc, values[key])
             for key, doc in TABLES[config].items() if values[key] != doc}
    assert not drift, '\n'.join(
        f'{config} {key}: docs/recipes.md says {doc!r}, the config gives '
        f'{got!r}' for key, (doc, got) in drift.items())


def test_recipe_check_sees_drift():
    """A changed lr or weight-decay rule no longer matches the table."""
    config = 'configs/mae/mae-vit-base_pixel_1600e.py'
    cfg, model, groups = build_meta(config)
    table = TABLES[config]
    assert learning_rate(cfg, model, groups) == table['lr']
    drifted = copy.deepcopy(cfg)
    drifted.optim_wrapper.optimizer.lr *= 2
    assert learning_rate(drifted, model, groups) != table['lr']
    assert no_decay(cfg, model, groups) == table['no weight decay']
    cls_token = model.backbone.cls_token
    exempt = [dict(g, params=[p for p in g['params'] if p is not cls_token])
              for g in groups]
    exempt.append(dict(params=[cls_token], weight_decay=0.))
    assert no_decay(cfg, model, exempt) != table['no weight decay']


def test_flat_layer_ids_reach_past_num_layers():
    """The iTPN detection rule: ids over the flat block list, the last main
    block at 1 / d, the absolute table at the top id."""
    cfg, model, groups = build_meta(
        'configs/benchmarks/mask_rcnn/'
        'itpn_hivit-base-p16_pyramid_mask-rcnn_1x_coco.py')
    by_name = {n: g for g in groups for n in g['param_names']}
    d = 0.9
    assert len(model.backbone.blocks) == 32
    assert by_name['backbone.blocks.31.attn.qkv.weight']['lr_scale'] == \
        pytest.approx(1 / d)
    assert by_name['backbone.blocks.3.reduction.weight']['lr_scale'] == \
        pytest.approx(d**27)  # a merge is an entry of its own
    assert by_name['backbone.pos_embed']['lr_scale'] == 1.0
    assert by_name['backbone.patch_embed.proj.weight']['lr_scale'] == \
        pytest.approx(d**31)
