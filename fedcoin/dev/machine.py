"""One line describing the machine a figure was measured on (the scripts print it with every run)."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """Platform, CPU count, JAX version and backend, and the load average now."""
    import jax

    la = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs, JAX {jax.__version__} on "
            f"{jax.devices()[0].platform}; load average {la}")
