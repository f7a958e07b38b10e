"""SegLoop's headless engine. Never imports Qt.

Modules: io (images, masks, atomic writes), project (folder + SQLite index), metrics,
crf (DenseCRF), demo (synthetic project), models, weights, inference, training, versions, cli.
"""

__version__ = "0.1.0"
