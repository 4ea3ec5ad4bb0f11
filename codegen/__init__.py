"""hilkit code generator: IR, passes, memory planner, C emitter, build driver."""
