"""Safetensors encoding of parameters, updates and datasets: deterministic and bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from fedcoin.ml import serialization as ser
from fedcoin.ml.models import Arch, init_params

import jax


def _params(seed=0, arch=Arch("mlp", (64, 16, 10))):
    return {k: np.asarray(v) for k, v in init_params(arch, key=jax.random.key(seed)).items()}


def test_round_trip_is_bit_exact_including_negative_zero_and_nan_payloads():
    p = _params()
    p["b0"] = p["b0"].copy()
    p["b0"][0] = -0.0
    p["b0"][1] = np.frombuffer(np.uint32(0x7FC00123).tobytes(), np.float32)[0]  # a NaN with a payload
    data = ser.params_to_bytes(p)
    back = ser.params_from_bytes(data)
    assert list(back) == ["w0", "b0", "w1", "b1"]
    for k in p:
        assert back[k].dtype == np.float32
        assert back[k].tobytes() == p[k].tobytes()
    assert ser.params_to_bytes(back) == data


def test_bytes_do_not_depend_on_dict_insertion_order():
    p = _params()
    reordered = {k: p[k] for k in reversed(list(p))}
    assert ser.params_to_bytes(p) == ser.params_to_bytes(reordered)


def test_jax_arrays_serialize_like_numpy_arrays():
    arch = Arch("logreg", (64, 10))
    pj = init_params(arch, key=jax.random.key(3))
    assert ser.params_to_bytes(pj) == ser.params_to_bytes({k: np.asarray(v) for k, v in pj.items()})


def test_different_values_give_different_bytes():
    assert ser.params_to_bytes(_params(0)) != ser.params_to_bytes(_params(1))


def test_float64_is_refused_rather_than_silently_cast():
    with pytest.raises(ser.SerializationError, match="float32"):
        ser.params_to_bytes({"w0": np.zeros((2, 2), np.float64)})


def test_shapes_are_checked_against_the_architecture():
    data = ser.params_to_bytes(_params(arch=Arch("logreg", (64, 10))))
    assert set(ser.params_from_bytes(data, Arch("logreg", (64, 10)))) == {"w0", "b0"}
    with pytest.raises(ser.SerializationError, match="expected"):
        ser.params_from_bytes(data, Arch("logreg", (784, 10)))


def test_garbage_is_refused_with_a_clear_error():
    with pytest.raises(ser.SerializationError, match="not a safetensors blob"):
        ser.loads(b"\x80\x04definitely not safetensors")


def test_dataset_round_trip():
    x = np.random.default_rng(0).random((7, 5), dtype=np.float32)
    y = np.arange(7, dtype=np.int32)
    x2, y2 = ser.dataset_from_bytes(ser.dataset_to_bytes(x, y))
    assert x2.tobytes() == x.tobytes() and y2.tobytes() == y.tobytes()
