"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class NseError(Exception):
    """Bad input or an unmet precondition the user can fix (not a bug)."""


class LatencyMiss(NseError, KeyError):
    """A latency-table lookup found no entry for a key."""

    def __init__(self, keys: list[str], table: str, hint: str) -> None:
        self.keys = list(keys)
        shown = ", ".join(self.keys[:5]) + (f" (+{len(self.keys) - 5} more)" if len(self.keys) > 5 else "")
        super().__init__(f"latency table {table} has no entry for {shown}; fill it with: {hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]
