"""Distribution-shift benchmarks: TFDS builders reading the original releases.

Importing this package registers the builders. Each benchmark is read from
files a user downloads by hand (see its `BenchmarkSpec.manual_download`) and
stored as ArrayRecord files with the fields `BenchmarkSpec` documents.

from sparse_shared_jax.data import benchmarks

spec = benchmarks.BENCHMARKS["waterbirds"]
source = benchmarks.load_benchmark(
    "waterbirds/224px", "test", data_dir="/data/tfds", manual_dir="/data/waterbirds"
)
counts = benchmarks.group_counts(source, spec)  # int64 [spec.num_groups]
"""

from sparse_shared_jax.data.benchmarks._common import (
    BenchmarkBuilder,
    BenchmarkDataError,
    ImageConfig,
    group_counts,
    group_of,
    load_benchmark,
)
from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec
from sparse_shared_jax.data.benchmarks.camelyon17 import CAMELYON17, Camelyon17Wilds
from sparse_shared_jax.data.benchmarks.celeba import CELEBA, CelebA
from sparse_shared_jax.data.benchmarks.civil_comments import (
    CIVIL_COMMENTS,
    CivilCommentsWilds,
)
from sparse_shared_jax.data.benchmarks.metashift import METASHIFT, MetaShift
from sparse_shared_jax.data.benchmarks.multinli import MULTINLI, MultiNLINegation
from sparse_shared_jax.data.benchmarks.waterbirds import WATERBIRDS, Waterbirds

# name -> what the benchmark yields, and name -> its TFDS builder.
BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (WATERBIRDS, CELEBA, MULTINLI, CIVIL_COMMENTS, CAMELYON17, METASHIFT)
}
BUILDERS: dict[str, type[BenchmarkBuilder]] = {
    builder.name: builder
    for builder in (
        Waterbirds,
        CelebA,
        MultiNLINegation,
        CivilCommentsWilds,
        Camelyon17Wilds,
        MetaShift,
    )
}

__all__ = [
    "BENCHMARKS",
    "BUILDERS",
    "BenchmarkBuilder",
    "BenchmarkDataError",
    "BenchmarkSpec",
    "ImageConfig",
    "group_counts",
    "group_of",
    "load_benchmark",
]
