"""Optimizers and learning-rate schedules (``import minicnn.optim as optim``)."""
from minicnn.optim import lr_scheduler  # noqa: F401
from minicnn.optim.adam import Adam, RMSprop  # noqa: F401
from minicnn.optim.optimizer import Optimizer  # noqa: F401
from minicnn.optim.sgd import SGD  # noqa: F401
from minicnn.optim.adaptive import Adadelta, Adagrad, Adamax, AdamW, NAdam  # noqa: F401
from minicnn.optim.lbfgs import LBFGS  # noqa: F401
