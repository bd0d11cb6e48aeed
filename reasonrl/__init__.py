"""reasonrl: train reasoning language models the DeepSeek-R1 way.

Importing the package is cheap on purpose: torch, transformers and the task
packages are imported by the modules that need them, never here.
"""

__version__ = "0.1.0"
