"""The project's configuration files (hydra's ``train.yaml`` and its groups, the model variants,
``pseudo_label.yaml``), shipped with the package so that an installed copy (``pip install .``, not
only ``-e``) finds them: code asks for :data:`CONFIG_DIR` instead of a path relative to a checkout."""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
