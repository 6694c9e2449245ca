import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r"__version__ = '([^']+)'",
                    Path('mmmim/version.py').read_text()).group(1)

setup(
    name='mmmim',
    version=version,
    description='Masked image modeling (MAE, SimMIM, HPM, SIM, iTPN) as an '
    'OpenMMLab plugin for mmpretrain, mmdet and mmsegmentation',
    long_description=Path('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['mmmim', 'mmmim.*']),
    install_requires=[
        'mmengine>=0.10.7,<0.11',
        'mmpretrain>=1.2.0,<1.3',
        'simplejpeg>=1.6',
        'timm>=1.0',
    ],
    extras_require={
        'transfer': ['mmdet>=3.3.0,<3.4', 'mmsegmentation>=1.2.2,<1.3',
                     'pycocotools', 'ftfy', 'regex'],
        'tests': ['pytest'],
    },
    license='Apache License 2.0',
)
