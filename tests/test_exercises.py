"""Exercises with feedback: answer cells checked by `check_exercise`, solutions shown on demand, CI runs them.

Every module notebook ends with an "Exercises" markdown cell (2-3 numbered exercises), then per exercise an
answer cell (`answer_n = None` and `check_exercise(module, n, answer_n...)`, tagged `answer`) and a visible
one-liner `show_solution(module, n)` (tagged `solution`), and a cell tagged `verify` that runs every solution
through its checker in the `ci` profile. No cell hides its source (Colab ignores `jupyter.source_hidden`).

Here: the notebooks' structure; the checker's behaviour on bad input and wrong answers; every solution whose
inputs the package can build at the ci profile's size through its checker (unit lane); and, for those that
need a notebook's trained models or its distributed launch, the `course` test reads the verify cell of the
executed notebook of `make notebooks`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from workshop_utils import exercises as E
from workshop_utils.config import get_profile
from workshop_utils.course import MODULES
from workshop_utils.solutions import AnyOf, Passes

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {m.number: ROOT / "notebooks" / m.notebook for m in MODULES}  # every module of the course map
RUN = ROOT / "build" / "ci"
HEADING = re.compile(r"^#{1,3}\s*Exercises?\b", re.M | re.I)
ITEM = re.compile(r"^(?:\s{0,3}(\d+)[.)]\s+\S|#{2,4}\s*Exercise\s+(\d+)\b)", re.M | re.I)
SKIP_TAGS = {"skip-execution", "skip", "raises-exception"}
CI = get_profile("ci")
ALL = [(m, n) for m in NOTEBOOKS for n in E.exercise_numbers(m)]
# Solutions that need a notebook's trained models (07, 08) or its torchrun launch (05): checked in the
# executed notebook's verify cell (test_solutions_ran_in_the_ci_run), not here.
COURSE_ONLY = [(5, 2), (5, 3), (7, 1), (7, 2), (7, 3), (8, 1)]
UNIT = [e for e in ALL if e not in COURSE_ONLY]


def exercise_section(nb) -> tuple[list[int], list[int]]:
    """(exercise numbers found after the Exercises heading, indices of `solution` cells after it)."""
    start = next(
        (i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and HEADING.search(c.source)), None
    )
    if start is None:
        return [], []
    numbers, solutions = [], []
    for i, cell in enumerate(nb.cells[start:], start):
        if cell.cell_type == "markdown":
            body = cell.source[HEADING.search(cell.source).end() :] if i == start else cell.source
            numbers += [int(a or b) for a, b in ITEM.findall(body)]
        elif "solution" in cell.metadata.get("tags", []):
            solutions.append(i)
    return numbers, solutions


def tagged(nb, tag: str) -> list:
    """Code cells carrying `tag`."""
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


# ---------------------------------------------------------------------------------------- notebooks
def test_there_are_module_notebooks() -> None:
    missing = [p.name for p in NOTEBOOKS.values() if not p.exists()]
    assert NOTEBOOKS and not missing, f"course map names notebooks that do not exist: {missing}"


def test_section_reader_on_a_made_up_notebook() -> None:
    md = nbformat.v4.new_markdown_cell(
        "## Exercises\n1. warm-up\n2. measure\n   3 GB is not an item\n3. extend"
    )
    sol, sol2 = (
        nbformat.v4.new_code_cell(f"show_solution(1, {i})", metadata={"tags": ["solution"]}) for i in (1, 2)
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T\n1. goal"), md, sol, sol2])
    assert exercise_section(nb) == ([1, 2, 3], [2, 3])
    assert exercise_section(nbformat.v4.new_notebook(cells=[md])) == ([1, 2, 3], [])
    assert exercise_section(nbformat.v4.new_notebook(cells=[sol])) == ([], [])


@pytest.mark.parametrize("module", list(NOTEBOOKS), ids=lambda m: NOTEBOOKS[m].name)
def test_exercise_cells(module: int) -> None:
    path = NOTEBOOKS[module]
    nb = nbformat.read(path, as_version=4)
    numbers, solutions = exercise_section(nb)
    assert numbers == E.exercise_numbers(module) and 2 <= len(numbers) <= 3, (
        f"{path.name}: exercises {numbers} in markdown, checkers for {E.exercise_numbers(module)}"
    )
    hidden = [i for i, c in enumerate(nb.cells) if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert not hidden, f"{path.name} cells {hidden}: source_hidden (Colab ignores it): use show_solution"
    assert [nb.cells[i].source.strip() for i in solutions] == [
        f"show_solution({module}, {n})" for n in numbers
    ]
    answers = tagged(nb, "answer")
    assert len(answers) == len(numbers), f"{path.name}: one answer cell per exercise"
    for n, cell in zip(numbers, answers):
        assert (
            f"answer_{n} = None" in cell.source and f"check_exercise({module}, {n}, answer_{n}" in cell.source
        )
    verify = tagged(nb, "verify")
    assert len(verify) == 1 and f"verify_solutions({module}" in verify[0].source, (
        f"{path.name}: no verify cell"
    )
    for cell in [*answers, *verify, *(nb.cells[i] for i in solutions)]:
        assert not SKIP_TAGS & set(cell.metadata.get("tags", [])), f"{path.name}: an exercise cell is skipped"


def test_every_exercise_is_checked_here_or_in_the_executed_notebook() -> None:
    assert set(UNIT) | set(COURSE_ONLY) == set(ALL) and set(COURSE_ONLY) <= set(ALL)


# ---------------------------------------------------------------------------------------- the checker
def test_bad_module_and_exercise_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"module must be one of \[0, 1, 2"):
        E.check_exercise(42, 1, 1.0)
    with pytest.raises(ValueError, match=r"module 03 has exercises \[1, 2, 3\], got n=7"):
        E.check_exercise(3, 7, 1.0)
    with pytest.raises(ValueError, match=r"module must be one of"):
        E.show_solution(True, 1)


def test_none_is_a_friendly_reminder_not_an_error(capsys) -> None:
    assert E.check_exercise(2, 1, None) is False  # no ctx needed to say so
    assert "write your answer in the cell above first: answer_1 = a dict {'lost'" in capsys.readouterr().out


def test_missing_notebook_objects_are_named() -> None:
    with pytest.raises(ValueError, match=r"needs ctx entries \['docs'\]"):
        E.check_exercise(2, 1, {"lost": [], "passed": []}, {"pairs": []})
    with pytest.raises(ValueError, match="ctx must be a dict"):
        E.check_exercise(2, 1, {"lost": []}, ["docs"])


def test_compare_names_what_differs_without_giving_the_value() -> None:
    assert E.compare({"a": 1.005, "b": [1, 2]}, {"a": 1.0, "b": [1, 2]}, (0.01, 0)) is None
    assert E.compare({"a": 1.0}, {"a": 1.0, "b": 2}) == "missing key 'b' (expected keys: 'a', 'b')"
    assert E.compare({"a": 1.0, "c": 3}, {"a": 1.0}) == "unexpected key 'c' (expected keys: 'a')"
    assert "order of magnitude 1e9" in E.compare(2e6, 7e9)
    assert "too high" in E.compare(1.2, 1.0, (0.05, 0)) and "1.2" not in E.compare(1.2, 1.0, (0.05, 0))
    assert E.compare([1, 2], [1, 2, 3]) == "expected a list of 3 values, got 2"
    assert E.compare("fp32", "fp16").endswith("is not what the numbers say")
    assert E.compare(True, True) is None and E.compare(1, True) is None and E.compare(None, True) is not None
    assert E.compare(0.97, 1.0, (0, 0.05)) is None and E.compare(0.9, 1.0, (0, 0.05)) is not None
    assert (
        E.compare("add", AnyOf(("add", "max"))) is None and E.compare("repeat", AnyOf(("add",))) is not None
    )
    assert E.compare(["b", "a"], {"a", "b"}) is None and "missing" in E.compare(["a"], {"a", "b"})
    assert E.compare(3, Passes(lambda a: None if a == 3 else "not three")) is None
    assert E.compare(4, Passes(lambda a: None if a == 3 else "not three")) == "not three"

    @dataclasses.dataclass
    class Result:
        ok: bool
        extra: float

    assert E.compare(Result(True, 0.1), {"ok": True}) is None  # a dataclass may carry more fields
    assert E.compare(np.float64(2.0), 2.0) is None and E.compare(torch.tensor([1, 2]), [1, 2]) is None


def test_show_solution_renders_the_source_and_runs_nothing(capsys) -> None:
    source = E.solution_source(2, 3)
    assert source.startswith("def solution_3(") and "re.subn" in source
    E.show_solution(
        2, 3
    )  # outside a notebook: IPython's display prints a repr, it does not call the solution
    out = capsys.readouterr().out
    assert "the SSN stays" not in out  # the solution's own print did not run


# ---------------------------------------------------------------------------------------- solutions
@pytest.fixture(scope="module")
def ctx00() -> dict:
    gen = torch.Generator().manual_seed(0)
    n = CI.setup.matmul_n
    return {"a": torch.randn(n, n, generator=gen), "b": torch.randn(n, n, generator=gen), "min_run_time": 0.2}


@pytest.fixture(scope="module")
def ctx01() -> dict:
    from workshop_utils import architectures as A

    train, val = A.arch_text(CI)
    vocab = A.CharVocab(train + val)
    return {"vocab": vocab, "arch": CI.arch, "tiny": A.build_tiny("llama", vocab, CI.arch, CI.arch.context)}


@pytest.fixture(scope="module")
def ctx02() -> dict:
    from workshop_utils.data import crawl as C

    return {"docs": C.build_crawl(CI.crawl.n_docs, seed=0), "pairs": C.similarity_pairs(400, seed=0)}


@pytest.fixture(scope="module")
def ctx03(tmp_path_factory) -> dict:
    from workshop_utils.bpe import Tokenizer, train_bpe
    from workshop_utils.corpus import load_corpus
    from workshop_utils.tokenizer import SPECIAL_TOKENS, train_course_tokenizer

    corpus = load_corpus(CI)
    text = corpus.train[: CI.bpe.train_chars]
    path = tmp_path_factory.mktemp("bpe") / "train_slice.txt"
    path.write_text(text, encoding="utf-8")
    ours = Tokenizer(*train_bpe(path, CI.bpe.vocab_size, SPECIAL_TOKENS), SPECIAL_TOKENS)
    return {"ours": ours, "course_tok": train_course_tokenizer(text, CI.bpe.vocab_size), "bpe_file": path,
            "vocab_size": CI.bpe.vocab_size, "val_text": corpus.val}  # fmt: skip


@pytest.fixture(scope="module")
def ctx04() -> dict:
    from workshop_utils import memory as M
    from workshop_utils.device import pick_device
    from workshop_utils.models import build_course_model

    model = build_course_model(CI)
    gen = torch.Generator().manual_seed(0)
    shape = (CI.memory.batch_size, CI.memory.context)
    x, y = (torch.randint(0, model.config.vocab_size, shape, generator=gen) for _ in range(2))
    adamw = M.measure_training_step(model, x, y, "adamw")
    return {"profile": CI, "x": x, "y": y, "device": pick_device(force_cpu=True), "adamw": adamw}


@pytest.fixture(scope="module")
def ctx06() -> dict:
    import pandas as pd

    from workshop_utils import scaling as sc
    from workshop_utils.paths import repo_root
    from workshop_utils.sweep import load_sweep

    stored = load_sweep(repo_root() / "data" / "scaling" / "sweep_cpu.json")
    df = pd.DataFrame(stored["records"])
    n_boot = get_profile(stored["profile"]).scaling.n_boot
    boots = sc.bootstrap_isoflop(df["params"], df["budget"], df["loss"], n_boot=n_boot, seed=0)
    return {"sweep": df, "boot_interval": (np.percentile(boots, 10), np.percentile(boots, 90))}


@pytest.fixture(scope="module")
def ctx08(tmp_path_factory) -> dict:
    from workshop_utils.models import load_course_model

    base = load_course_model(CI)  # the cached ci course model
    model_dir = tmp_path_factory.mktemp("course") / "course_model"
    base.save_pretrained(model_dir)
    ids = torch.randint(0, base.config.vocab_size, (4, 48), generator=torch.Generator().manual_seed(0))
    return {"model_dir": model_dir, "batch_ids": ids, "seed": 0}


def context(module: int, request) -> dict:
    """The module's ctx fixture, or {} for modules whose solutions need nothing from the notebook."""
    name = f"ctx{module:02d}"
    return request.getfixturevalue(name) if name in globals() else {}


def wrong(answer):
    """A wrong answer of the same form: the first number off by a factor, a flag flipped, a word changed."""
    if dataclasses.is_dataclass(answer):
        return dataclasses.replace(answer, ok=not answer.ok)
    if callable(answer):
        return lambda text: (text, 0)  # a masker that masks nothing
    if isinstance(answer, dict):
        key = next(iter(answer))
        return {**answer, key: wrong(answer[key])}
    if isinstance(answer, (list, tuple)):
        return type(answer)([wrong(answer[0]), *answer[1:]]) if answer else ["not a word"]
    if isinstance(answer, bool):
        return not answer
    if isinstance(answer, str):
        return answer + " (or not)"
    if answer is None:
        return "api"
    return answer * 10 + 1


@pytest.mark.parametrize(("module", "n"), UNIT, ids=[f"{m:02d}.{n}" for m, n in UNIT])
def test_solution_is_right_and_a_wrong_answer_is_not(module: int, n: int, request, capsys) -> None:
    ctx = context(module, request)
    _, solution = E._check_of(module, n)
    answer = E._call(solution, ctx, "solution")
    capsys.readouterr()
    assert E.check_exercise(module, n, answer, ctx), capsys.readouterr().out
    assert capsys.readouterr().out.strip().endswith("right")
    assert not E.check_exercise(module, n, wrong(answer), ctx)
    out = capsys.readouterr().out
    assert re.search(r"^not yet: \S", out, re.M) and "tolerance:" in out, out


def test_course_only_checkers_on_made_up_runs(capsys) -> None:
    """07.2 and 08.1 need trained models in the notebook; their checkers also work on made-up results."""
    from workshop_utils import sft

    splits = sft.make_sft_splits(CI, 0)
    preds = [e.answer if i % 3 else "zzz" for i, e in enumerate(splits.test)]  # every third answer wrong
    by_family = {f: sft.exact_match(*zip(*[(p, e.answer) for p, e in zip(preds, splits.test) if e.family == f]))
                 for f in sft.FAMILIES}  # fmt: skip
    run = sft.EvalResult(sft.exact_match(preds, [e.answer for e in splits.test]), by_family, 0.0, preds)
    ctx = {"splits": splits, "sft_eval": run}
    answer = E.solutions_module(7).solution_2(**ctx)
    assert E.check_exercise(7, 2, answer, ctx) and not E.check_exercise(7, 2, wrong(answer), ctx)
    import pandas as pd

    spectra = {f"model.layers.{i}.self_attn.q_proj": torch.tensor([3.0, 2.0, 1.0, 0.5]) for i in range(2)}
    spectra["model.layers.0.self_attn.v_proj"] = torch.tensor([1.0, 1.0, 1.0, 1.0])  # not a q_proj: ignored
    cmp = pd.DataFrame({"method": ["full", "lora", "lora"], "r": [0, 4, 2], "answer_loss": [1.0, 0.9, 0.8]})
    ctx = {"per_layer": spectra, "cmp": cmp}
    answer = E.solutions_module(8).solution_1(**ctx)
    assert answer == {"rank_90": 2, "best_rank": 2, "same": True}  # 9 + 4 of 14.25 is 91 % of the energy
    assert E.check_exercise(8, 1, answer, ctx) and not E.check_exercise(8, 1, wrong(answer), ctx)
    assert capsys.readouterr().out.count("not yet:") == 2


def test_verify_solutions_runs_every_solution_and_refuses_a_broken_one(monkeypatch, capsys) -> None:
    assert E.verify_solutions(9) == {1: True, 2: True, 3: True}
    assert capsys.readouterr().out.count(": right") == 3
    m09 = E.solutions_module(9)
    monkeypatch.setattr(m09, "solution_2", lambda: {"choice": "qlora", "lora_fits": True})
    with pytest.raises(AssertionError, match=r"module 09: solutions the checker refuses: \{2: "):
        E.verify_solutions(9)


# ---------------------------------------------------------------------------------------- the ci run
@pytest.mark.course
@pytest.mark.parametrize("module", list(NOTEBOOKS), ids=lambda m: NOTEBOOKS[m].name)
def test_solutions_ran_in_the_ci_run(module: int) -> None:
    executed = RUN / "notebooks" / NOTEBOOKS[module].name
    assert executed.is_file(), f"{executed} missing: run `make notebooks`"
    nb = nbformat.read(executed, as_version=4)
    verify = tagged(nb, "verify")
    assert len(verify) == 1 and verify[0].get("execution_count") is not None, (
        f"{executed.name}: verify not run"
    )
    outputs = verify[0].get("outputs", [])
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{executed.name}: verify_solutions raised {errors[0].get('ename')}"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for n in E.exercise_numbers(module):
        assert re.search(rf"^solution {n}: right", text, re.M), f"{executed.name}: solution {n} not right"
