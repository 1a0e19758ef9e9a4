"""The validation helpers: bools, floats and out-of-range values are refused with the parameter's name."""

from __future__ import annotations

import numpy as np
import pytest

from kronos import InputError
from kronos.core.validation import integer, number, one_of, positive_int, probability

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_validation_helpers_refuse_bools_floats_and_out_of_range_values():
    assert positive_int("n", np.int64(3)) == 3 and type(positive_int("n", np.int64(3))) is int
    assert integer("k", 0, minimum=0) == 0
    for bad in (True, 2.0, 0, "3"):
        with pytest.raises(InputError, match=rf"n must be an integer >= 1, got {bad!r}"):
            positive_int("n", bad)
    assert probability("p", 1) == 1.0
    with pytest.raises(InputError, match=r"p must be in \(0, 1\], got 0"):
        probability("p", 0)
    with pytest.raises(InputError, match="x must be >= 0, got -1"):
        number("x", -1, low=0.0, low_open=False)
    with pytest.raises(ValueError, match="finite"):
        number("x", float("inf"), error=ValueError)
    assert one_of("w", "a", ("a", "b")) == "a"
    with pytest.raises(InputError, match=r"w must be one of \('a', 'b'\), got 'c'"):
        one_of("w", "c", ("a", "b"))
