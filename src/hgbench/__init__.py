"""hgbench: a reproducible benchmark and ablation pipeline for Stacked Hourglass Networks.

The library API (docs/inference.md)::

    from hgbench import load_model, predict_image
    model = load_model("models/demo/synthetic/hg2x1/s0/model.pt")    # or an exported .safetensors
    joints = predict_image(model, "photo.jpg", box=[x1, y1, x2, y2])   # [J, 3]: x, y (0-based px), score

The names below are imported on first use (module ``__getattr__``), so ``import hgbench`` stays
cheap: it loads neither torch nor anything of the pipeline or report extras.
"""

__version__ = "0.1.0"

_API = {
    "StackedHourglass": "hgbench.model",
    "ModelConfig": "hgbench.model",
    "ModelInfo": "hgbench.inference",
    "load_model": "hgbench.inference",
    "resolve_device": "hgbench.inference",
    "predict_image": "hgbench.infer",
    "predict_people": "hgbench.infer",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'hgbench' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
