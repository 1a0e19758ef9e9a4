"""One set of sampling options: validated once, with names, frozen, and merged with the original's keywords."""

from __future__ import annotations

import pytest

from kronos import InputError, SamplingOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- the options object ----------------------------------------------------------------------------
def test_defaults_are_the_documented_forecasting_defaults():
    o = SamplingOptions()
    assert (o.temperature, o.top_k, o.top_p, o.sample_count) == (1.0, 0, 1.0, 100)
    assert (o.use_cache, o.window, o.block, o.batch_size, o.draws) == (True, "exact", None, None, "uniform")
    with pytest.raises(AttributeError):
        o.top_p = 0.5  # frozen: validated once, never changed below the public API


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=True), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=-1), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(sample_count=0), "sample_count"),
        (dict(sample_count=True), "sample_count"),
        (dict(use_cache="yes"), "use_cache"),
        (dict(window="sliding"), "window"),
        (dict(block=0), "block"),
        (dict(batch_size=-3), "batch_size"),
        (dict(draws="gumbel"), "draws"),
    ],
)
def test_invalid_options_name_the_parameter_and_value(kwargs, name):
    ((key, value),) = kwargs.items()
    with pytest.raises(InputError, match=rf"{name}.*{value!r}" if not isinstance(value, float) else name):
        SamplingOptions(**kwargs)


def test_resolve_merges_keywords_and_accepts_the_original_T():
    base = SamplingOptions(sample_count=7)
    assert SamplingOptions.resolve(base) is base
    assert SamplingOptions.resolve(base, T=0.5, top_p=0.9) == SamplingOptions(
        temperature=0.5, top_p=0.9, sample_count=7
    )
    assert SamplingOptions.resolve(None, top_k=3) == SamplingOptions(top_k=3)
    with pytest.raises(InputError, match="not both"):
        SamplingOptions.resolve(T=0.5, temperature=0.5)
    with pytest.raises(InputError, match=r"unknown sampling option\(s\) \['samples'\]"):
        SamplingOptions.resolve(samples=3)
    with pytest.raises(InputError, match="options must be a SamplingOptions"):
        SamplingOptions.resolve({"top_k": 3})
