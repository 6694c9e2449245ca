"""``import mmmim`` changes no function or method of another package.

A fresh process first imports every module of torch, mmengine, mmcv,
mmpretrain, mmdet, mmseg, timm and numpy that this test process (which has
imported mmmim) holds,
records every function, class and class attribute (methods, properties,
dicts of functions such as mmengine's checkpoint loader schemes) of those
modules and the environment, imports mmmim and compares. The only allowed
change is the additions to torch's weights-only allow-list."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmseg',
            'timm', 'numpy')

COMPARE = """
import importlib, inspect, json, os, sys, warnings
warnings.simplefilter('ignore')
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
PACKAGES = %r


def described(value):
    if inspect.isroutine(value) or inspect.isclass(value) or isinstance(
            value, (property, classmethod, staticmethod)):
        return id(value)
    if isinstance(value, dict) and value and all(
            callable(v) for v in value.values()):
        return sorted((repr(k), id(v)) for k, v in value.items())
    return None


def snapshot():
    seen = {}
    for mod_name, module in list(sys.modules.items()):
        if module is None or mod_name.split('.')[0] not in PACKAGES:
            continue
        for attr, value in list(vars(module).items()):
            key = f'{mod_name}.{attr}'
            d = described(value)
            if d is not None:
                seen[key] = d
            if inspect.isclass(value) and value.__module__ == mod_name:
                for cattr, cvalue in list(vars(value).items()):
                    d = described(cvalue)
                    if d is not None:
                        seen[f'{key}.{cattr}'] = d
    return seen


def changes(before, after):
    return sorted(k for k in before if k in after and before[k] != after[k]
                  or k not in after)


import torch.serialization as ts
before, env = snapshot(), dict(os.environ)
safe_before = set(map(str, ts.get_safe_globals()))
import mmmim
after = snapshot()
result = dict(changed=changes(before, after), env=env != dict(os.environ),
              safe_added=sorted(set(map(str, ts.get_safe_globals()))
                                - safe_before),
              checked=len(before))
# the comparison notices a patch: replace a method as the old shim did
from mmengine.model.weight_init import PretrainedInit
PretrainedInit.__call__ = lambda self, module: None
result['patched'] = changes(before, snapshot())
print(json.dumps(result))
""" % (PACKAGES, )


def _run(code, *args):
    proc = subprocess.run([sys.executable, '-c', code, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_mmmim_changes_no_function_of_another_package():
    # what this process (conftest imports mmmim) has of those packages
    modules = sorted(m for m in sys.modules if m.split('.')[0] in PACKAGES)
    assert 'mmengine.runner.checkpoint' in modules
    assert 'mmengine.model.weight_init' in modules
    result = _run(COMPARE, json.dumps(modules))
    assert result['checked'] > 10000  # functions, classes and methods
    assert result['changed'] == []
    assert not result['env']
    # registering types with torch's allow-list is the one change
    assert any('HistoryBuffer' in g for g in result['safe_added'])
    assert result['patched'] == [
        'mmengine.model.weight_init.PretrainedInit.__call__']
