"""Autoregressive decoding on tensors: the validated sampling settings, the sampling filters, generation
with a key/value cache (plus the original's uncached path for parity) and decoding tokens back to bars. No pandas."""
