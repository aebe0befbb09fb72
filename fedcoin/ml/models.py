"""The model zoo shared by the FL server (training) and the miners (the Shapley utility).

A model is a fully connected network described by its layer sizes; multinomial logistic
regression is the case with no hidden layer. Parameters are a flat ``dict[str, Array]`` with
names ``w0, b0, w1, b1, ...`` so they serialize to safetensors without a tree codec, and a
client update Δ has exactly the structure of the parameters.

Architecture ids are strings that appear in task specs: ``"logreg-784-10"`` or
``"mlp-784-200-10"`` (any number of hidden layers, ReLU between layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]


@dataclass(frozen=True)
class Arch:
    """A fully connected architecture.

    Attributes:
        kind: ``"logreg"`` (no hidden layer) or ``"mlp"``.
        sizes: layer widths from input to output, e.g. ``(784, 200, 10)``.
    """

    kind: str
    sizes: tuple[int, ...]

    def __post_init__(self):
        if self.kind not in ("logreg", "mlp"):
            raise ValueError(f"unknown model kind {self.kind!r}; expected 'logreg' or 'mlp'")
        if len(self.sizes) < 2 or any(int(s) <= 0 for s in self.sizes):
            raise ValueError(f"layer sizes must be >= 2 positive widths, got {self.sizes}")
        if self.kind == "logreg" and len(self.sizes) != 2:
            raise ValueError(f"logreg has exactly input and output sizes, got {self.sizes}")
        if self.kind == "mlp" and len(self.sizes) < 3:
            raise ValueError(f"mlp needs at least one hidden layer, got {self.sizes}")

    @property
    def id(self) -> str:
        return "-".join([self.kind, *map(str, self.sizes)])

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def num_classes(self) -> int:
        return self.sizes[-1]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape, in canonical order."""
        out: dict[str, tuple[int, ...]] = {}
        for i in range(self.n_layers):
            out[f"w{i}"] = (self.sizes[i], self.sizes[i + 1])
            out[f"b{i}"] = (self.sizes[i + 1],)
        return out

    @classmethod
    def parse(cls, arch_id: str) -> "Arch":
        """Parse ``"mlp-784-200-10"``; raises ValueError with the expected form."""
        parts = arch_id.split("-")
        try:
            return cls(parts[0], tuple(int(p) for p in parts[1:]))
        except (ValueError, IndexError) as e:
            raise ValueError(
                f"bad architecture id {arch_id!r}: expected e.g. 'logreg-784-10' or 'mlp-784-200-10' ({e})"
            ) from None


LOGREG = Arch("logreg", (784, 10))
MLP = Arch("mlp", (784, 200, 10))


def init_params(arch: Arch, *, key: jax.Array, dtype=jnp.float32) -> Params:
    """Glorot-uniform weights and zero biases.

    Args:
        arch: the architecture.
        key: PRNG key (keyword-only).

    Returns:
        ``{"w0": [d0, d1], "b0": [d1], ...}``.
    """
    keys = jax.random.split(key, arch.n_layers)
    params: Params = {}
    for i, k in enumerate(keys):
        fan_in, fan_out = arch.sizes[i], arch.sizes[i + 1]
        limit = jnp.sqrt(6.0 / (fan_in + fan_out)).astype(dtype)
        params[f"w{i}"] = jax.random.uniform(k, (fan_in, fan_out), dtype, -limit, limit)
        params[f"b{i}"] = jnp.zeros((fan_out,), dtype)
    return params


def add_bias(h: jax.Array, b: jax.Array) -> jax.Array:
    """``h + b`` with ``b`` [f] broadcast explicitly over the leading axes of ``h`` [..., f].

    Explicit so that it also runs under ``jax_numpy_rank_promotion="raise"`` (the tests' setting).
    """
    return h + jnp.reshape(b, (1,) * (h.ndim - b.ndim) + b.shape)


def hidden_from_preact(arch: Arch, params: Params, z0: jax.Array) -> jax.Array:
    """Logits from the first layer's pre-activations ``z0 = x @ w0 + b0``.

    Split out because the first layer is linear in the weights: the Shapley fast path
    averages per-client ``z0`` instead of averaging ``w0`` and recomputing ``x @ w0``.

    Args:
        z0: ``[..., sizes[1]]`` first-layer pre-activations.

    Returns:
        ``[..., num_classes]`` logits.
    """
    h = z0
    for i in range(1, arch.n_layers):
        h = add_bias(jax.nn.relu(h) @ params[f"w{i}"], params[f"b{i}"])
    return h


def apply(arch: Arch, params: Params, x: jax.Array) -> jax.Array:
    """Logits of the model.

    Args:
        x: ``[n, sizes[0]]`` inputs.

    Returns:
        ``[n, num_classes]`` logits.
    """
    return hidden_from_preact(arch, params, add_bias(x @ params["w0"], params["b0"]))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy. ``logits``: ``[n, c]``; ``labels``: ``[n]`` int."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of rows whose arg-max logit equals the label."""
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(logits.dtype))
