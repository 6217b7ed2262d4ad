"""Reproducibility: a chapter prints the same text on every run, and seeded generators return the same values.

The chapter test executes chapters/01_closed_form_fields.md twice from scratch, in two fresh
kernels started with different PYTHONHASHSEED values, and compares every text output of every
code cell. The two kernels run one after the other: started together, they sometimes picked the
same TCP port and one died with "Address already in use". On two nearly idle cores the test takes
about 30 to 40 s. It is part of the default run.

The generator tests compare values computed in this process with values computed in a fresh
interpreter that has another hash seed and another global torch seed. That catches hidden
dependence on process state, which a second call in the same process cannot.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import torch
from nbclient import NotebookClient

from interp import data
from interp.metrics import memorized_fraction

REPOSITORY = Path(__file__).resolve().parent.parent
CHAPTERS = [REPOSITORY / "chapters" / "01_closed_form_fields.md"]

# Seconds one cell may run before nbclient stops the kernel.
CELL_TIMEOUT = 600

# Two parts of an output change between processes without any change in what the chapter
# computes, so they are replaced before comparing. One is a memory address in a repr such as
# "<function f at 0x7f3a...>". The other is a random UUID, which the explorer widgets use as an
# HTML element id and Jupyter uses as a widget model id, so that two widgets never share an id.
MEMORY_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
UUID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")


def _normalise(text: str) -> str:
    text = MEMORY_ADDRESS.sub("0x<address>", text)
    return UUID.sub("<uuid>", text)


def text_outputs(notebook) -> list[tuple[int, str, str]]:
    """List ``(cell index, output kind, text)`` for every text output of every code cell."""
    outputs = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                outputs.append((index, f"stream {output['name']}", _normalise(output["text"])))
            elif kind in ("execute_result", "display_data"):
                for mime, value in sorted(output["data"].items()):
                    if mime.startswith("text/"):
                        text = value if isinstance(value, str) else "".join(value)
                        outputs.append((index, f"{kind} {mime}", _normalise(text)))
            elif kind == "error":
                outputs.append((index, "error", _normalise(f"{output['ename']}: {output['evalue']}")))
    return outputs


def execute_twice(chapter: Path) -> tuple[list, list]:
    """Execute a MyST chapter in two fresh kernels with different hash seeds and return both text outputs."""
    notebooks = [jupytext.read(chapter) for _ in range(2)]
    for notebook, hash_seed in zip(notebooks, ("1", "2")):
        client = NotebookClient(
            notebook, kernel_name="python3", timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(chapter.parent)}}
        )
        client.execute(env={**os.environ, "PYTHONHASHSEED": hash_seed})
    return text_outputs(notebooks[0]), text_outputs(notebooks[1])


def assert_same_outputs(first: list, second: list, chapter: Path) -> None:
    assert len(first) == len(second), f"{chapter.name}: {len(first)} text outputs in run 1, {len(second)} in run 2"
    for (cell, kind, text), (other_cell, other_kind, other_text) in zip(first, second):
        where = f"{chapter.name}, cell {cell} ({kind})"
        assert (cell, kind) == (other_cell, other_kind), f"{where}: run 2 has cell {other_cell} ({other_kind}) here"
        if text != other_text:
            changed = difflib.unified_diff(text.splitlines(), other_text.splitlines(), "run 1", "run 2", n=0, lineterm="")
            # Long lines such as embedded images are cut, so the message shows where the runs differ.
            diff_text = "\n".join(line[:300] for line in list(changed)[:40])
            pytest.fail(f"{where}: the runs differ.\n{diff_text}")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_outputs_identical_across_runs(chapter):
    first, second = execute_twice(chapter)

    assert first, f"{chapter.name}: the chapter printed no text output, so there is nothing to compare"
    errors = [(cell, text) for cell, kind, text in first if kind == "error"]
    assert not errors, f"{chapter.name}: cells raised {errors}"
    assert_same_outputs(first, second, chapter)


# Seeded generators across processes.

def _digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def generator_digests() -> dict:
    """Return SHA-256 digests of every seeded generator's output, and one memorized_fraction estimate."""
    means = [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]
    results = {
        "gaussian_mixture": data.gaussian_mixture(200, means, 0.5, seed=11),
        "two_moons": data.two_moons(200, noise=0.05, seed=11),
        "circles": data.circles(200, noise=0.05, seed=11),
        "spiral": data.spiral(200, noise=0.05, seed=11),
        "digits": data.digits(n=100, seed=11),
    }
    digests = {name: [_digest(points), _digest(labels)] for name, (points, labels) in results.items()}
    digests["separated_means"] = [_digest(data.separated_means(8, 3, 1.0, seed=11))]

    samples, _ = data.gaussian_mixture(300, means, 0.5, seed=12)
    train, _ = data.gaussian_mixture(40, means, 0.5, seed=13)
    estimate = memorized_fraction(samples, train, seed=11, n_bootstrap=500)
    digests["memorized_fraction"] = [estimate.fraction, estimate.low, estimate.high]
    return digests


# Run in the fresh interpreter: import this file as a module and print the digests as JSON.
FRESH_PROCESS_SCRIPT = """
import json, sys
import torch
sys.path.insert(0, sys.argv[1])
import test_reproducibility
torch.manual_seed(int(sys.argv[2]))
print(json.dumps(test_reproducibility.generator_digests()))
"""


def _digests_in_fresh_process(global_seed: int, hash_seed: str) -> dict:
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(Path(__file__).parent), str(global_seed)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPOSITORY,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, f"the digest script failed:\n{completed.stderr}"
    return json.loads(completed.stdout)


def test_generators_identical_across_processes():
    torch.manual_seed(0)
    in_this_process = json.loads(json.dumps(generator_digests()))
    fresh = _digests_in_fresh_process(global_seed=987, hash_seed="3")

    assert set(in_this_process) == set(fresh), f"different generators: {sorted(in_this_process)} and {sorted(fresh)}"
    for name in sorted(in_this_process):
        expected = in_this_process[name]
        assert expected == fresh[name], f"{name}: this process gave {expected}, a fresh process gave {fresh[name]}"


@pytest.mark.parametrize("name", ["gaussian_mixture", "two_moons", "circles", "spiral"])
def test_generators_ignore_global_seed(name):
    outputs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        if name == "gaussian_mixture":
            outputs.append(data.gaussian_mixture(64, [[0.0], [3.0]], 0.5, seed=7))
        else:
            outputs.append(getattr(data, name)(64, noise=0.1, seed=7))

    (first_points, first_labels), (second_points, second_labels) = outputs
    assert torch.equal(first_points, second_points), f"{name}: the points depend on the global torch seed"
    assert torch.equal(first_labels, second_labels), f"{name}: the labels depend on the global torch seed"


@pytest.mark.parametrize("name", ["gaussian_mixture", "two_moons", "circles", "spiral", "digits"])
def test_generators_same_draws_in_every_dtype(name):
    def generate(dtype):
        if name == "gaussian_mixture":
            return data.gaussian_mixture(64, [[0.0, 1.0], [3.0, 2.0]], 0.5, seed=9, dtype=dtype)
        if name == "digits":
            return data.digits(n=32, seed=9, dtype=dtype)
        return getattr(data, name)(64, noise=0.1, seed=9, dtype=dtype)

    points_64, labels_64 = generate(torch.float64)
    points_32, labels_32 = generate(torch.float32)

    assert torch.equal(points_64.to(torch.float32), points_32), f"{name}: float32 points are not the float64 points rounded"
    assert torch.equal(labels_64, labels_32), f"{name}: the labels depend on the dtype"


def test_memorized_fraction_identical_after_other_draws():
    means = [[0.0, 0.0], [4.0, 0.0]]
    samples, _ = data.gaussian_mixture(200, means, 0.4, seed=1)
    train, _ = data.gaussian_mixture(30, means, 0.4, seed=2)

    first = memorized_fraction(samples, train, seed=3, n_bootstrap=400)
    torch.manual_seed(12345)
    torch.rand(1000)
    memorized_fraction(samples, train, seed=4, n_bootstrap=400)
    second = memorized_fraction(samples, train, seed=3, n_bootstrap=400)

    assert first == second, f"seed 3 gave {first}, then {second} after other draws"


def test_digest_is_stable_for_equal_tensors():
    # Guards the digest helper itself: equal tensors with different strides must hash alike.
    tensor = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    strided = tensor.t().contiguous().t()

    first = _digest(tensor)
    second = _digest(strided)
    assert first == second, "the digest depends on the memory layout"
