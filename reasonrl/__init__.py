"""reasonrl: train reasoning language models the DeepSeek-R1 way.

Importing the package is cheap on purpose: torch, transformers and the task packages are
imported by the modules that need them, never here.
"""

import os

# OpenMP threads that spin while waiting collapse when another process (a reward worker, a second
# run) wants the same cores: a 2-thread training step measured 30x slower on a busy 2-core CPU.
# Sleeping waits cost little when the machine is idle. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
