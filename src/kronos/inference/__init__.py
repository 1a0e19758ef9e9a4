"""Autoregressive decoding on tensors: the validated sampling settings, the sampling filters, and
generation with a key/value cache (plus the original's uncached path for parity). No pandas."""
