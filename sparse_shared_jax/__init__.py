"""sparse_shared_jax: sparse and shared feature activations in JAX.

The method of Fumero et al., "Leveraging sparse and shared feature activations
for disentangled representation learning" (NeurIPS 2023). The public modules
are `losses`, `inner`, `bilevel`, `models`, `data` and `metrics`; import them
directly, e.g. ``from sparse_shared_jax import losses, inner``.
"""

__version__ = "0.1.0"
