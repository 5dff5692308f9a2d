#!/usr/bin/env bash
# The accelerator table in one command (run from the repository root on a
# machine with an NVIDIA GPU and jax's CUDA wheels; not yet run on one, so its
# duration is not measured):
#
#   pip install -e ".[test]" "jax[cuda12]==0.10.2"
#   bash benchmarks/accelerator.sh
#
# 1. the step benchmark around the default experiment and over T = 4, 10,
#    16, 64 (conv encoder): steps/s, bilevel / multi-task ratio, compile
#    time, peak device memory -> results/benchmark_gpu.{md,json};
# 2. the top XLA operations of a jax.profiler trace of the default step at
#    T = 64 -> results/benchmark_gpu_profile.{md,json};
# 3. the inner solver on the default experiments' episodes and the vector
#    experiment's step ratio -> results/benchmark_gpu_inner.md;
# 4. the input pipeline: episodes/s by worker count, and the default step
#    with the pipeline against the step alone -> results/benchmark_gpu_input.md.
set -euo pipefail
export JAX_PLATFORMS=cuda
python benchmarks/step_benchmark.py --platform gpu --axes centre num_tasks \
  --memory_axes centre num_tasks --steps 10 --repeats 3 \
  --output results/benchmark_gpu
python benchmarks/profile_step.py --num_tasks 64 --steps 10 \
  --output results/benchmark_gpu_profile
python benchmarks/inner_solver.py --step_ratio --step_repeats 100 \
  --output results/benchmark_gpu_inner.md
python benchmarks/input_pipeline.py --workers 0 2 4 \
  --output results/benchmark_gpu_input.md
