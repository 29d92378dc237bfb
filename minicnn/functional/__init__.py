"""Every differentiable op under its PyTorch name (``import minicnn.functional as F``)."""
from minicnn.functional.activation import *  # noqa: F401,F403
from minicnn.functional.linear import *  # noqa: F401,F403
from minicnn.functional.loss import *  # noqa: F401,F403
from minicnn.functional.conv import *  # noqa: F401,F403
from minicnn.functional.pool import *  # noqa: F401,F403
from minicnn.functional.resample import *  # noqa: F401,F403
from minicnn.functional.roi import *  # noqa: F401,F403
from minicnn.functional.norm import *  # noqa: F401,F403
from minicnn.functional.detection import *  # noqa: F401,F403
from minicnn.functional.misc import *  # noqa: F401,F403
from minicnn.functional.metric_learning import *  # noqa: F401,F403
from minicnn.functional.gram import *  # noqa: F401,F403
from minicnn.ops import pad  # noqa: F401
