"""Numerical rules the questions share between their single-row and batched forms, each once.

The single-row questions (``_flip.py``, ``_probability.py``) and the batched kernels (``_batch.py``)
must give the same answers, so the margins, nudges and iteration limits they apply live here.
"""

from __future__ import annotations

import math

# minimal_flip: the projection is accepted when it misses the margin by at most this fraction of it: the
# answer then still leads by more than margin / 2, far above the round-off in computing logits.
MARGIN_SLACK = 0.5
MAX_MARGIN_NUDGES = 4

# closest_with_probability
LOG_STEP = math.log(100.0)  # bracketing steps in log lam
KKT_MAX_ITER = 60
AIM_ABOVE = 1e-13  # logit margin the reduced solve aims above the goal (p above alpha by ~2.5e-14)
PENALISED_TOL = 1e-10  # gradient norm of the penalised problem at the answer, as in invert
# The answer must sit on the side p >= alpha: a lam that misses by round-off is nudged down, by a
# relative 1e-12 at first and 4 times more each time, at most this many times (at most ~2e-8 in all).
LAM_NUDGE = 1e-12
MAX_LAM_NUDGES = 8
