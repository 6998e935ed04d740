"""hgbench: a reproducible benchmark and ablation pipeline for Stacked Hourglass Networks."""

__version__ = "0.1.0"
