"""A clock the test sets by hand (meters and integrators take `clock=` for exactly this)."""


class FakeClock:
    """Callable returning `t`; advance it by assigning `clock.t` or calling `advance(dt)`."""

    def __init__(self, t: float = 0.0):
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += float(dt)
        return self.t
