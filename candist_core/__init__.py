"""CanDist Studio core: store, import/export, teacher, student, metrics, review queue."""

__version__ = "0.1.0"
