"""hilkit.ops: the operator families. Each module registers its ops once in the core registry:
spec, shapes, numpy reference, counters and report metrics."""
