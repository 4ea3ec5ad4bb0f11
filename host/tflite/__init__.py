"""TFLite interchange: `.tflite` (float32) to and from hilkit model files (docs/interchange.md).

- `import_file(src, out)`: read a .tflite, write a validated hilkit model file.
- `export_file(model, out)`: write a hilkit model file as a .tflite that LiteRT loads and runs.
Errors are `TFLiteError` (a HilkitError: the CLI prints one line and exits 2)."""
from __future__ import annotations

from pathlib import Path

from .exporter import export_tflite, tfl_shape, write_atomic
from .importer import SUPPORTED, hwc_perm, import_tflite
from .schema import TFLiteError, interpreter_class

__all__ = ["TFLiteError", "SUPPORTED", "import_tflite", "export_tflite", "import_file", "export_file",
           "interpreter_class", "hwc_perm", "tfl_shape"]


def import_file(src, out, *, name: str | None = None):
    """Import a .tflite file and save it as a hilkit model file `out`; returns the LoadedModel."""
    from hilkit.models import modelfile

    graph, arrays = import_tflite(src)
    if name or "name" not in graph:  # keep the key order of a hilkit graph: format, version, name, ...
        graph = dict(list(graph.items())[:2] + [("name", name or Path(src).stem)]
                     + [(k, v) for k, v in list(graph.items())[2:] if k != "name"])
    try:
        return modelfile.save(out, graph, arrays)
    except modelfile.ModelFileError as e:
        raise TFLiteError(f"{src}: the imported graph is not a valid hilkit model: {e}") from None


def export_file(model, out) -> Path:
    """Write the hilkit model (file path or LoadedModel) as a .tflite file `out` (atomically)."""
    return write_atomic(out, export_tflite(model))
