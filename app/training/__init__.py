"""Fine-tuning in the GUI: worker thread, training dock, glue to the main window (app.host).

Entry point: :func:`app.training.controller.attach_training` (``attach_training(window)``).
"""

from .controller import TrainingController, attach_training

__all__ = ["TrainingController", "attach_training"]
