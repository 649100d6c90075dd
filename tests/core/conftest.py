"""Core test settings.

One torch thread: the suite shares a few cores with other jobs, and an OpenMP team
fighting for busy cores makes a 28x28 forward pass ~100x slower (seconds instead of
milliseconds). Results do not depend on the thread count.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
