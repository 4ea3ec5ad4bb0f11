"""The error types the CLI turns into one clear line and exit code 2."""


class HilkitError(Exception):
    """Base of hilkit's user-facing errors: bad input, missing tools, targets that do not answer."""


class UsageError(HilkitError, ValueError):
    """Bad command-line usage or an unknown name."""


def user_errors() -> tuple[type[BaseException], ...]:
    """All exception types that mean 'bad input or environment' (exit 2), gathered from the modules."""
    types: list[type[BaseException]] = [HilkitError]
    for mod, names in (("hilkit.models.modelfile", ["ModelFileError"]),
                       ("hilkit.codegen.ir", ["CodegenError"]),
                       ("hilkit.codegen.build", ["BuildError"]),
                       ("hilkit.host.boards", ["BoardError"]),
                       ("hilkit.host.protocol", ["ProtocolError", "LinkError"]),
                       ("hilkit.host.link", ["LinkError"]),
                       ("hilkit.host.runner", ["RunnerError", "TargetError"]),
                       ("hilkit.host.qemu", ["QemuError"])):
        try:
            m = __import__(mod, fromlist=names)
        except ImportError:
            continue
        types += [getattr(m, n) for n in names if isinstance(getattr(m, n, None), type)]
    return tuple(types)
