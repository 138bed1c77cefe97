"""Output nodes built from, and read back through, the registry of quantities (:mod:`aiida_llpam.quantities`)."""

from __future__ import annotations

import numpy as np
from aiida import orm

from aiida_llpam.quantities import OUTPUTS, axis_arrays, quantities_of

#: marks nodes written by this layout; written on every output node of the registry
LAYOUT_VERSION = 2


def _value(source, name: str):
    return source.get(name) if isinstance(source, dict) else getattr(source, name)


def build_output(output: str, source, axes: dict[str, np.ndarray] | None = None) -> orm.ArrayData:
    """The ``ArrayData`` of one registry output: every quantity, its T/r axes, units and attributes."""
    node = orm.ArrayData()
    units = {}
    for _, name, unit in axis_arrays(output):
        node.set_array(name, np.asarray(axes[name], dtype=float))
        units[name] = unit
    for quantity in quantities_of(output):
        node.set_array(quantity.name, np.asarray(_value(source, quantity.name)))
        units[quantity.name] = quantity.unit
    node.base.attributes.set("units", units)
    node.base.attributes.set("llpam_layout", LAYOUT_VERSION)
    for key in OUTPUTS[output].attributes:
        value = _value(source, key)
        node.base.attributes.set(key, np.asarray(value).tolist() if isinstance(value, (np.ndarray, tuple)) else value)
    return node


def build_outputs(source_kind: str, source, axes: dict[str, np.ndarray] | None = None) -> dict[str, orm.ArrayData]:
    """Every output of ``source_kind``; an optional one only where ``source`` holds its quantities."""
    return {
        name: build_output(name, source, axes)
        for name, out in OUTPUTS.items()
        if out.source == source_kind and not (out.optional and _value(source, quantities_of(name)[0].name) is None)
    }


def read_output(node: orm.ArrayData) -> dict:
    """Arrays and registry attributes of one output node, by name."""
    data = {name: node.get_array(name) for name in node.get_arraynames()}
    for key, value in node.base.attributes.all.items():
        if not key.startswith("array|") and key not in ("units", "llpam_layout"):
            data[key] = value
    return data
