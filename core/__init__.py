"""hilkit.core: what every layer builds on (errors, board descriptions, the model file, the op
registry, shared numpy functions). Imports nothing else from hilkit."""
