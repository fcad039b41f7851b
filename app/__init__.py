"""Flan Studio: a workbench for visual instruction-tuning datasets."""

__version__ = "0.1.0"
