"""Figure panels of the paper drawn from stored arrays (matplotlib, Agg)."""

from .panels import CAPTIONS, write_all_panels

__all__ = ["CAPTIONS", "write_all_panels"]
