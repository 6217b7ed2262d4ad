"""Benchmark the closed-form denoiser of ``interp.EmpiricalField`` on the CPU.

The script times ``EmpiricalField.denoiser`` over a grid of query counts m, training-set sizes n,
dimensions d and dtypes, and compares it with matrix products and with other ways of computing
the same softmax-weighted mean:

* ``matmul``: the reference rate, ``(Q @ K^T) @ K`` with the queries and keys of
  :mod:`interp.attention`, computed over blocks of keys so that the logits of one block have at
  most ``MATMUL_BLOCK_ELEMENTS`` entries;
* ``field``: ``EmpiricalField(method="auto").denoiser`` at ``MID_TIME``, where "auto" takes the
  attention form;
* ``kernel``: :func:`interp.attention.attention_mean` alone, on queries built beforehand;
* ``sdpa_2d``: ``scaled_dot_product_attention`` on the same 2-D queries and keys;
* ``sdpa_4d_value_d``: 4-D inputs whose values are the d centred samples, without the extra
  column, so the value size d differs from the query size d + 1;
* ``cdist_softmax``: ``softmax(-cdist(x, beta X)**2 / (2 sigma**2)) @ X``;
* ``exp_normalise``: ``exp(Q K^T)`` divided by its row sums, with no max subtraction;
* ``field_late``: the denoiser at ``LATE_TIME``, where "auto" falls back to the direct form.

Every rate is a fraction of the matmul rate for the same (m, n, d, dtype), with the nominal count of
``2 m n (d + 1)`` flops for the logits plus the same again for the weighted sum. Peak memory is
measured in a subprocess per configuration (see :func:`measure_peak_memory`), and the samplers'
overhead by timing ``interp.sample_ode`` against the same Euler loop without the sampler.

Usage, from the repository root::

    .venv/bin/python benchmarks/field_benchmark.py --quick   # skips configurations above the quick flop budget
    .venv/bin/python benchmarks/field_benchmark.py           # every configuration, one repetition (hours on 2 cores)

Both modes write ``benchmarks/results/field_benchmark.json`` and print a table.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import interp
from interp import EmpiricalField, schedules
from interp.attention import attention_mean, attention_queries

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "field_benchmark.json"

QUERY_COUNTS = (100, 1_000, 10_000)
TRAINING_SIZES = (1_000, 10_000, 100_000, 1_000_000)
DIMENSIONS = (2, 64, 784)
DTYPES = (torch.float32, torch.float64)

# Times on the linear schedule (beta = t, sigma = 1 - t). At MID_TIME the precision rule lets every
# query of the benchmark data use the attention form, and at LATE_TIME it sends every query to the
# direct form in both dtypes. Each record stores the fraction of queries that used the attention form.
MID_TIME = 0.5
LATE_TIME = 0.999

# Quick mode skips a configuration whose nominal flop count 4 m n (d + 1) exceeds this budget. At the
# 35-90 Gflop/s that float32 matrix products reached on a 2-core AMD EPYC with torch 2.13, 4e10 flops
# take about a second per call.
QUICK_FLOP_BUDGET = 4e10
# The direct form builds every difference x - beta x^(i), so quick mode skips it above this many
# elements m n d, which take seconds per call on 2 cores.
QUICK_DIRECT_ELEMENT_BUDGET = 1e9
QUICK_REPETITIONS = 3
FULL_REPETITIONS = 1

# The implementations that build the (m, n) logits in full are skipped where those logits would
# take more than this many bytes, since each of them keeps two or three such matrices alive.
DENSE_LOGITS_BYTE_LIMIT = 2 * 2**30
MATMUL_BLOCK_ELEMENTS = 2**24

MEMORY_GOAL_CONFIGURATION = {"m": 1_000, "n": 1_000_000, "d": 64, "dtype": "float32"}
MEMORY_GOAL_BYTES = 2**30
RATE_GOAL_FRACTION = 0.9
# The field counts as "not slower than the attention kernel alone" when its work outside the kernel
# (validation, the precision rule, the queries) takes at most this fraction of the kernel's time.
KERNEL_OVERHEAD_TOLERANCE = 0.05
SAMPLER_OVERHEAD_GOAL = 0.05
SAMPLER_CONFIGURATION = {"m": 1_000, "n": 1_000, "d": 64, "dtype": "float32", "steps": 20}

# Rows of the error check: each implementation's result on these queries is compared with the
# float64 direct form.
ERROR_CHECK_QUERIES = 16

IMPLEMENTATIONS = ("matmul", "field", "kernel", "sdpa_2d", "sdpa_4d_value_d", "cdist_softmax", "exp_normalise")
DENSE_IMPLEMENTATIONS = ("sdpa_2d", "sdpa_4d_value_d", "cdist_softmax", "exp_normalise")


# Problem construction.


def make_problem(m: int, n: int, d: int, dtype: torch.dtype, t: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` training samples ``N(0, I / d)`` and ``m`` queries ``beta x^(j) + sigma zeta``.

    The samples have norm close to 1 in every dimension, and the queries follow the interpolant of
    the linear schedule at ``t`` from randomly chosen training samples. Every tensor is drawn in
    ``dtype`` and scaled in place, so building them allocates no float64 copy of the training set.
    """
    generator = torch.Generator().manual_seed(seed)
    train = torch.randn(n, d, generator=generator, dtype=dtype)
    train.mul_(1 / math.sqrt(d))

    beta, sigma = t, 1 - t
    chosen = torch.randint(n, (m,), generator=generator)
    queries = torch.randn(m, d, generator=generator, dtype=dtype)
    queries.mul_(sigma).add_(train[chosen], alpha=beta)
    return train, queries


def nominal_flops(m: int, n: int, d: int) -> float:
    """Count ``2 m n (d + 1)`` flops for the logits and the same for the weighted sum."""
    return 4.0 * m * n * (d + 1)


def input_bytes(n: int, d: int, dtype: torch.dtype) -> int:
    """Estimate the bytes of the training set and its keys, the two largest tensors of a configuration."""
    return n * (2 * d + 1) * torch.finfo(dtype).bits // 8


# The implementations. Each factory does its setup outside the timed call and returns the call.


def build_calls(train: torch.Tensor, queries: torch.Tensor, t: float) -> dict[str, Callable[[], torch.Tensor]]:
    """Return, for each implementation, a function computing the denoiser (or, for matmul, the reference products)."""
    field = EmpiricalField(train, schedules.linear())
    keys = field._keys
    m = queries.shape[0]
    beta = torch.full((m,), t, dtype=train.dtype)
    sigma = torch.full((m,), 1 - t, dtype=train.dtype)
    attention_input = attention_queries(queries, beta, sigma, keys.centre)
    centred = keys.keys[:, :-1].contiguous()
    block = max(1, MATMUL_BLOCK_ELEMENTS // m)

    def matmul() -> torch.Tensor:
        total = attention_input.new_zeros(m, keys.keys.shape[1])
        for start in range(0, keys.keys.shape[0], block):
            key_block = keys.keys[start : start + block]
            total += (attention_input @ key_block.T) @ key_block
        return total

    def sdpa_2d() -> torch.Tensor:
        output = F.scaled_dot_product_attention(attention_input, keys.keys, keys.keys, scale=1.0)
        return output[:, :-1] + keys.centre

    def sdpa_4d_value_d() -> torch.Tensor:
        output = F.scaled_dot_product_attention(attention_input[None, None], keys.keys[None, None], centred[None, None], scale=1.0)
        return output[0, 0] + keys.centre

    def cdist_softmax() -> torch.Tensor:
        distances = torch.cdist(queries, t * train).square()
        return torch.softmax(-distances / (2 * (1 - t) ** 2), dim=1) @ train

    def exp_normalise() -> torch.Tensor:
        unnormalised = torch.exp(attention_input @ keys.keys.T)
        return (unnormalised @ centred) / unnormalised.sum(dim=1, keepdim=True) + keys.centre

    return {
        "matmul": matmul,
        "field": lambda: field.denoiser(queries, t),
        "kernel": lambda: attention_mean(attention_input, keys)[:, :-1] + keys.centre,
        "sdpa_2d": sdpa_2d,
        "sdpa_4d_value_d": sdpa_4d_value_d,
        "cdist_softmax": cdist_softmax,
        "exp_normalise": exp_normalise,
    }


def attention_fraction(train: torch.Tensor, queries: torch.Tensor, t: float) -> float:
    """Return the fraction of queries for which the precision rule of "auto" allows the attention form."""
    field = EmpiricalField(train, schedules.linear())
    times = field._prepare(queries, t)
    return float(field._expanded_rows(queries, times).double().mean())


def kernel_names(d: int = 8) -> dict[str, str]:
    """Record which ATen kernel ``scaled_dot_product_attention`` dispatches to for each layout, on a small shape."""
    query = torch.randn(64, d + 1)
    key = torch.randn(256, d + 1)
    value_d = key[:, :-1].contiguous()
    layouts = {
        "kernel": (query[None, None], key[None, None], key[None, None]),
        "sdpa_2d": (query, key, key),
        "sdpa_4d_value_d": (query[None, None], key[None, None], value_d[None, None]),
    }
    names = {}
    for layout, arguments in layouts.items():
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            F.scaled_dot_product_attention(*arguments, scale=1.0)
        dispatched = [event.name for event in profiler.events() if event.name.startswith("aten::_scaled_dot_product")]
        names[layout] = dispatched[0] if dispatched else "unknown"
    return names


# Timing.


def time_round_robin(calls: dict[str, Callable[[], torch.Tensor]], repetitions: int, warm_up: bool) -> dict[str, float]:
    """Time each call ``repetitions`` times, cycling through the calls, and return each one's fastest time in seconds.

    Cycling spreads a burst of load from other processes over all implementations, and the minimum
    is the time least disturbed by it.
    """
    if warm_up:
        for call in calls.values():
            call()
    best = {name: math.inf for name in calls}
    for _ in range(repetitions):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def relative_errors(
    calls: dict[str, Callable[[], torch.Tensor]], train: torch.Tensor, queries: torch.Tensor, t: float
) -> dict[str, float]:
    """Compare each implementation's denoiser on the first queries with the float64 direct form.

    The error is ``max_j ||m_j - m_j^ref|| / ||m_j^ref||``, NaN where the result is not finite.
    The calls run on all queries, so this costs one more call of each implementation.
    """
    rows = min(ERROR_CHECK_QUERIES, queries.shape[0])
    reference_field = EmpiricalField(train.double(), schedules.linear(), method="direct")
    reference = reference_field.denoiser(queries[:rows].double(), t)
    errors = {}
    for name, call in calls.items():
        if name == "matmul":
            continue
        result = call()[:rows].double()
        error = ((result - reference).norm(dim=1) / reference.norm(dim=1)).max().item()
        errors[name] = error if math.isfinite(error) else math.nan
    return errors


def field_overhead(train: torch.Tensor, queries: torch.Tensor, t: float, repetitions: int) -> float:
    """Return the time of one ``denoiser`` call outside the attention kernel, as a fraction of the kernel's time.

    The profiler times the kernel and the whole call in the same run, so load from other processes
    affects both alike. The result is the smallest fraction over the repetitions, and it includes the
    profiler's own cost of recording each operator.
    """
    field = EmpiricalField(train, schedules.linear())
    field.denoiser(queries, t)
    fractions = []
    for _ in range(repetitions):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            start = time.perf_counter()
            field.denoiser(queries, t)
            total = time.perf_counter() - start
        kernel_microseconds = sum(
            event.cpu_time_total for event in profiler.events() if event.name == "aten::scaled_dot_product_attention"
        )
        fractions.append(total / (kernel_microseconds * 1e-6) - 1)
    return min(fractions)


# Peak memory, one subprocess per configuration.


def _resident_bytes() -> tuple[int, int]:
    """Return the current resident set size and its peak so far, in bytes, from /proc/self/status."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def memory_worker(m: int, n: int, d: int, dtype_name: str, t: float) -> None:
    """Build the inputs, record the resident memory, evaluate the denoiser once, and print the peak increase as JSON."""
    dtype = getattr(torch, dtype_name)
    train, queries = make_problem(m, n, d, dtype, t)
    gc.collect()
    baseline, _ = _resident_bytes()

    field = EmpiricalField(train, schedules.linear())
    field.denoiser(queries, t)
    _, peak = _resident_bytes()
    # ru_maxrss is in KiB on Linux; it equals VmHWM and is printed as a cross-check.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"baseline_bytes": baseline, "peak_bytes": peak, "maxrss_bytes": maxrss, "extra_bytes": peak - baseline}))


def measure_peak_memory(m: int, n: int, d: int, dtype: torch.dtype, t: float) -> dict:
    """Run :func:`memory_worker` in a fresh interpreter and return its JSON record.

    The peak is the process's high-water resident memory after one denoiser call. The baseline is its
    resident memory after importing torch and allocating the training set and the queries. Their
    difference, ``extra_bytes``, is the memory the field itself needs, for its keys and one call.
    """
    dtype_name = str(dtype).removeprefix("torch.")
    command = [sys.executable, __file__, "--memory-worker", str(m), str(n), str(d), dtype_name, repr(t)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"memory worker for m={m}, n={n}, d={d}, {dtype_name} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# The sampler overhead.


def measure_sampler_overhead(repetitions: int) -> dict:
    """Measure the time ``interp.sample_ode(field.velocity, x0, steps, "euler")`` spends outside the field.

    A wrapper around ``field.velocity`` adds up the time spent inside it during one sampler run. The
    overhead is the run's total time over that sum, minus 1. It covers the sampler's argument checks,
    the shape, dtype and finiteness checks of each evaluation, and the Euler updates. Both times come
    from the same run, so load from other processes affects them alike, and the smallest overhead
    over the repetitions is reported. The record also gives the same Euler loop written out without the
    sampler, and ``steps`` times one denoiser call at ``MID_TIME``, timed separately for scale.
    """
    configuration = SAMPLER_CONFIGURATION
    dtype = getattr(torch, configuration["dtype"])
    steps = configuration["steps"]
    train, _ = make_problem(configuration["m"], configuration["n"], configuration["d"], dtype, MID_TIME)
    start_state = torch.randn(configuration["m"], configuration["d"], generator=torch.Generator().manual_seed(1), dtype=dtype)
    field = EmpiricalField(train, schedules.linear())
    grid = [k / steps for k in range(steps + 1)]

    inside_seconds = [0.0]

    def timed_velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        start = time.perf_counter()
        value = field.velocity(x, t)
        inside_seconds[0] += time.perf_counter() - start
        return value

    overheads = []
    attention_steps = 0
    for _ in range(repetitions + 1):
        inside_seconds[0] = 0.0
        start = time.perf_counter()
        path = interp.sample_ode(timed_velocity, start_state, steps, "euler", return_path=True)
        total = time.perf_counter() - start
        overheads.append(total / inside_seconds[0] - 1)
    # The first run is a warm-up.
    overheads = overheads[1:]
    for state, t in zip(path[:-1], grid[:-1]):
        times = field._prepare(state, t)
        attention_steps += bool(field._expanded_rows(state, times).all())

    def bare_loop() -> torch.Tensor:
        x = start_state
        for t, t_next in zip(grid[:-1], grid[1:]):
            x = x + (t_next - t) * field.velocity(x, t)
        return x

    calls = {
        "sample_ode": lambda: interp.sample_ode(field.velocity, start_state, steps, "euler"),
        "bare_loop": bare_loop,
        "denoiser_mid": lambda: field.denoiser(start_state * (1 - MID_TIME), MID_TIME),
    }
    best = time_round_robin(calls, repetitions, warm_up=True)
    return {
        **configuration,
        "steps_on_attention": attention_steps,
        "overhead": min(overheads),
        "overheads": overheads,
        "sample_ode_seconds": best["sample_ode"],
        "bare_loop_seconds": best["bare_loop"],
        "steps_times_denoiser_seconds": steps * best["denoiser_mid"],
    }


# The benchmark grid.


def skip_reason(name: str, m: int, n: int, d: int, dtype: torch.dtype, quick: bool, max_flops: float) -> str | None:
    """Return why one implementation is skipped on one configuration, or None to run it."""
    if nominal_flops(m, n, d) > max_flops:
        return f"4 m n (d + 1) = {nominal_flops(m, n, d):.1e} flops is above the budget {max_flops:.0e}"
    dense_bytes = m * n * torch.finfo(dtype).bits // 8
    if name in DENSE_IMPLEMENTATIONS and dense_bytes > DENSE_LOGITS_BYTE_LIMIT:
        return f"its (m, n) logits would take {dense_bytes / 2**30:.1f} GiB"
    if name == "field_late" and quick and m * n * d > QUICK_DIRECT_ELEMENT_BUDGET:
        return f"the direct form's m n d = {m * n * d:.1e} elements are above the quick budget {QUICK_DIRECT_ELEMENT_BUDGET:.0e}"
    return None


def run_configuration(m: int, n: int, d: int, dtype: torch.dtype, quick: bool, max_flops: float) -> dict:
    """Time every implementation on one configuration and return its record."""
    record = {"m": m, "n": n, "d": d, "dtype": str(dtype).removeprefix("torch."), "flops": nominal_flops(m, n, d)}
    skipped = {}
    for name in (*IMPLEMENTATIONS, "field_late"):
        reason = skip_reason(name, m, n, d, dtype, quick, max_flops)
        if reason is not None:
            skipped[name] = reason
    record["skipped"] = skipped
    if "matmul" in skipped:
        return record

    # A call within the quick budget is cheap enough to warm up and to check against the float64
    # direct form. In full mode a larger one runs once, cold.
    cheap = nominal_flops(m, n, d) <= QUICK_FLOP_BUDGET
    repetitions = QUICK_REPETITIONS if quick else FULL_REPETITIONS

    train, queries = make_problem(m, n, d, dtype, MID_TIME)
    record["attention_fraction_mid"] = attention_fraction(train, queries, MID_TIME)
    calls = {name: call for name, call in build_calls(train, queries, MID_TIME).items() if name not in skipped}
    seconds = time_round_robin(calls, repetitions, warm_up=cheap)
    if cheap:
        record["relative_error"] = relative_errors(calls, train, queries, MID_TIME)
        if "field" in calls:
            record["field_overhead"] = field_overhead(train, queries, MID_TIME, repetitions)
    del calls

    if "field_late" not in skipped:
        late_train, late_queries = make_problem(m, n, d, dtype, LATE_TIME)
        record["attention_fraction_late"] = attention_fraction(late_train, late_queries, LATE_TIME)
        late_field = EmpiricalField(late_train, schedules.linear())
        late_calls = {"field_late": lambda: late_field.denoiser(late_queries, LATE_TIME)}
        seconds.update(time_round_robin(late_calls, repetitions, warm_up=cheap))
        del late_field, late_calls

    record["seconds"] = seconds
    matmul_rate = record["flops"] / seconds["matmul"]
    record["matmul_gflops"] = matmul_rate / 1e9
    record["fraction_of_matmul"] = {name: record["flops"] / value / matmul_rate for name, value in seconds.items()}
    return record


def machine_info() -> dict:
    """Describe the machine and the software that produced the numbers."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
    }


def evaluate_goals(records: list[dict], memory: dict, sampler: dict) -> dict:
    """Check the three goals against the measured records."""
    rate_rows = [
        record
        for record in records
        if record["dtype"] == "float32" and record["n"] >= 10_000 and record["d"] >= 64 and "seconds" in record
    ]
    fractions = [record["fraction_of_matmul"]["field"] for record in rate_rows]
    kernel_ratios = [record["seconds"]["field"] / record["seconds"]["kernel"] for record in rate_rows]
    overheads = [record["field_overhead"] for record in rate_rows if "field_overhead" in record]
    memory_extra = memory.get("extra_bytes")
    return {
        "rate": {
            "configurations": len(rate_rows),
            "min_fraction_of_matmul": min(fractions, default=math.nan),
            "max_field_over_kernel": max(kernel_ratios, default=math.nan),
            "max_profiled_overhead": max(overheads, default=math.nan),
            # The profiled overhead decides "not slower than the kernel", because the ratio of two
            # separately timed calls moves by more than the margin when other processes load the machine.
            "met": bool(rate_rows)
            and min(fractions) >= RATE_GOAL_FRACTION
            and bool(overheads)
            and max(overheads) <= KERNEL_OVERHEAD_TOLERANCE,
        },
        "memory": {
            **MEMORY_GOAL_CONFIGURATION,
            "extra_bytes": memory_extra,
            "met": memory_extra is not None and memory_extra < MEMORY_GOAL_BYTES,
        },
        "sampler": {"overhead": sampler["overhead"], "met": sampler["overhead"] < SAMPLER_OVERHEAD_GOAL},
    }


# Output.


def print_table(records: list[dict]) -> None:
    """Print one row per configuration: the matmul rate, each implementation's fraction of it, and the peak memory."""
    columns = (*IMPLEMENTATIONS[1:], "field_late")
    header = f"{'dtype':8} {'m':>6} {'n':>8} {'d':>4} {'matmul GF/s':>11} " + " ".join(f"{name:>15}" for name in columns)
    print(header + f" {'peak MiB':>9}")
    for record in records:
        start = f"{record['dtype']:8} {record['m']:>6} {record['n']:>8} {record['d']:>4}"
        if "seconds" not in record:
            print(f"{start} {'skipped':>11}")
            continue
        cells = [
            f"{record['fraction_of_matmul'][name]:>15.2f}" if name in record["fraction_of_matmul"] else f"{'-':>15}"
            for name in columns
        ]
        memory = record.get("memory", {}).get("extra_bytes")
        memory_cell = f"{memory / 2**20:>9.0f}" if memory is not None else f"{'-':>9}"
        print(f"{start} {record['matmul_gflops']:>11.1f} " + " ".join(cells) + " " + memory_cell)


def print_goals(goals: dict) -> None:
    rate = goals["rate"]
    memory = goals["memory"]
    sampler = goals["sampler"]
    print(
        f"\nrate goal (float32, n >= 1e4, d >= 64, {rate['configurations']} configurations): "
        f"min fraction of matmul {rate['min_fraction_of_matmul']:.2f} (goal >= {RATE_GOAL_FRACTION}), "
        f"max time outside the kernel {100 * rate['max_profiled_overhead']:.1f}% of the kernel's (goal <= "
        f"{100 * KERNEL_OVERHEAD_TOLERANCE:.0f}%; separately timed field / kernel ratio up to {rate['max_field_over_kernel']:.2f}): "
        f"{'met' if rate['met'] else 'NOT met'}"
    )
    extra = memory["extra_bytes"]
    extra_text = f"{extra / 2**20:.0f} MiB" if extra is not None else "not measured"
    print(
        f"memory goal (m = {memory['m']}, n = {memory['n']}, d = {memory['d']}, {memory['dtype']}): "
        f"{extra_text} above the inputs (goal < 1024 MiB): {'met' if memory['met'] else 'NOT met'}"
    )
    print(
        f"sampler goal: sample_ode adds {100 * sampler['overhead']:.1f}% to the bare Euler loop "
        f"(goal < {100 * SAMPLER_OVERHEAD_GOAL:.0f}%): {'met' if sampler['met'] else 'NOT met'}"
    )


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"skip configurations above the flop budget and repeat each call {QUICK_REPETITIONS} times")
    parser.add_argument(
        "--max-flops",
        type=float,
        default=None,
        help=f"skip configurations above this many nominal flops 4 m n (d + 1) (default {QUICK_FLOP_BUDGET:.0e} with --quick, no limit without)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help=f"JSON file for the results (default {RESULTS_PATH})")
    parser.add_argument("--memory-worker", nargs=5, metavar=("M", "N", "D", "DTYPE", "TIME"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    arguments = parse_arguments(argv)
    if arguments.memory_worker is not None:
        m, n, d, dtype_name, time_text = arguments.memory_worker
        memory_worker(int(m), int(n), int(d), dtype_name, float(time_text))
        return

    quick = arguments.quick
    if arguments.max_flops is not None:
        max_flops = arguments.max_flops
    elif quick:
        max_flops = QUICK_FLOP_BUDGET
    else:
        max_flops = math.inf
    physical_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    info = machine_info()
    info["kernels"] = kernel_names()
    started = time.perf_counter()

    records = []
    for dtype in DTYPES:
        for d in DIMENSIONS:
            for n in TRAINING_SIZES:
                for m in QUERY_COUNTS:
                    # Keep the inputs to a quarter of the machine's memory, so the workspace fits beside them.
                    if input_bytes(n, d, dtype) > physical_bytes / 4:
                        record = {"m": m, "n": n, "d": d, "dtype": str(dtype).removeprefix("torch."), "flops": nominal_flops(m, n, d)}
                        record["skipped"] = {"all": f"the inputs would take {input_bytes(n, d, dtype) / 2**30:.1f} GiB"}
                        records.append(record)
                        continue
                    print(f"[{time.perf_counter() - started:7.1f} s] {dtype} m={m} n={n} d={d}", file=sys.stderr, flush=True)
                    record = run_configuration(m, n, d, dtype, quick, max_flops)
                    if "seconds" in record:
                        record["memory"] = measure_peak_memory(m, n, d, dtype, MID_TIME)
                    records.append(record)
                    gc.collect()

    goal = MEMORY_GOAL_CONFIGURATION
    memory_record = next(
        (
            record["memory"]
            for record in records
            if "memory" in record and all(record[key] == goal[key] for key in ("m", "n", "d", "dtype"))
        ),
        None,
    )
    if memory_record is None:
        # The memory goal's configuration is above the quick flop budget, but one call is affordable.
        memory_record = measure_peak_memory(goal["m"], goal["n"], goal["d"], getattr(torch, goal["dtype"]), MID_TIME)
    print(f"[{time.perf_counter() - started:7.1f} s] sampler overhead", file=sys.stderr, flush=True)
    sampler = measure_sampler_overhead(QUICK_REPETITIONS)
    goals = evaluate_goals(records, memory_record, sampler)

    info["load_average_end"] = os.getloadavg()
    info["wall_seconds"] = time.perf_counter() - started
    results = {
        "machine": info,
        "mode": "quick" if quick else "full",
        "command": "benchmarks/field_benchmark.py" + (" --quick" if quick else ""),
        "settings": {
            "mid_time": MID_TIME,
            "late_time": LATE_TIME,
            "max_flops": max_flops if math.isfinite(max_flops) else None,
            "quick_direct_element_budget": QUICK_DIRECT_ELEMENT_BUDGET if quick else None,
            "repetitions": QUICK_REPETITIONS if quick else FULL_REPETITIONS,
            "dense_logits_byte_limit": DENSE_LOGITS_BYTE_LIMIT,
            "matmul_block_elements": MATMUL_BLOCK_ELEMENTS,
        },
        "configurations": records,
        "memory_goal": memory_record,
        "sampler": sampler,
        "goals": goals,
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    print(f"{info['cpu_model']}, {info['cpu_count']} cores, torch {info['torch_version']} with {info['torch_threads']} threads, {info['date']}")
    print(f"load average {info['load_average_start'][0]:.1f} at the start and {info['load_average_end'][0]:.1f} at the end\n")
    print_table(records)
    skipped_rows = [record for record in records if "seconds" not in record]
    if skipped_rows:
        print(f"\n{len(skipped_rows)} configurations skipped entirely; the JSON file gives each reason.")
    print_goals(goals)
    print(f"\nresults written to {arguments.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
