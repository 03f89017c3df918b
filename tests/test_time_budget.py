"""time_budget: the lengths chosen for a budget, the error for one too short, the logged plan, and
one real run that ends near its budget."""

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from zssr_tf.cli import main
from zssr_tf.config import load_config
from zssr_tf.errors import ZSSRError
from zssr_tf.time_budget import (ESTIMATION_FLOOR, ZSSR_FLOOR, BudgetOutcome, StageCosts, apply_plan, choose_lengths,
                                 iterations_run, measure_costs, predicted_zssr, replan_zssr)

# A tiny network on a small image: a short probe and short iterations.
TINY = ["init_weights=none", "model.depth=3", "model.width=8", "crop_size=32", "back_projection_iters=[1]", "progress_every=0",
        "train.max_iters=300"]
# Costs as a slow CPU might measure them (seconds).
COSTS = StageCosts(estimation_iteration=0.03, estimation_setup=8.0, zssr_iteration=0.15, zssr_setup=3.0,
                   reconstruction_test=(0.1,), gt_test=(0.0,), final_test=(2.0,), measuring=15.0)


def blind_fkp():
    return load_config("blind", ["method=fkp"])  # 3 runs x 500 iterations; a 200-iteration cosine decay


def test_the_lengths_shrink_with_the_budget():
    plans = [choose_lengths(blind_fkp(), COSTS, budget, spent=20) for budget in (80, 150, 300, 1200)]
    estimation = [p.estimation_runs * p.estimation_iters for p in plans]
    max_iters = [p.max_iters for p in plans]
    assert estimation == sorted(estimation) and max_iters == sorted(max_iters)
    assert estimation[0] < estimation[-1] == 3 * 500  # never more than configured
    assert max_iters[0] < max_iters[-1]
    for budget, plan in zip((80, 150, 300, 1200), plans):
        assert 0.9 * budget <= plan.predicted_total <= budget


def test_fewer_estimation_runs_before_shorter_ones():
    plan = choose_lengths(blind_fkp(), COSTS, 110, spent=20)  # the configured run needs ~124 s
    assert plan.estimation_runs < 3 and plan.estimation_iters == 500
    short = choose_lengths(blind_fkp(), COSTS, 60, spent=20)  # not even one full run beside ZSSR's floor
    assert short.estimation_runs == 1 and ESTIMATION_FLOOR["fkp"] <= short.estimation_iters < 500
    assert short.max_iters >= ZSSR_FLOOR


def test_a_cosine_schedule_is_stretched_to_stop_at_its_minimum_in_time():
    config = load_config("default")  # cosine from 1e-3, stopping under 9e-6 (94 % of max_iters)
    plan = choose_lengths(config, COSTS, 200, spent=10)
    ran = iterations_run(config.train, plan.max_iters)
    assert 0.93 * plan.max_iters <= ran <= 0.95 * plan.max_iters
    assert 0.9 * 200 <= plan.predicted_total <= 200


def test_zssr_is_replanned_from_the_time_left():
    config = load_config("default")
    plan = dataclasses.replace(choose_lengths(config, COSTS, 200, spent=10), started_at=1000.0)
    config = apply_plan(config, plan)
    on_time, deadline = replan_zssr(config, plan, now=1010.0)  # ZSSR starts when the plan said
    assert on_time.train.max_iters == plan.max_iters
    assert deadline.at == 1200.0 and deadline.min_iters == ZSSR_FLOOR and deadline.final_test == COSTS.final_test
    late, _ = replan_zssr(config, plan, now=1060.0)  # 50 s late: fewer iterations, still fitting
    assert late.train.max_iters < plan.max_iters
    assert 130 <= predicted_zssr(late, COSTS, late.train.max_iters) + sum(COSTS.final_test) <= 140
    early, _ = replan_zssr(config, plan, now=1000.0)
    assert early.train.max_iters > plan.max_iters
    gone, _ = replan_zssr(config, plan, now=1199.0)  # the floor, even past the budget
    assert gone.train.max_iters == ZSSR_FLOOR


def test_what_ran_is_reported_next_to_the_plan():
    plan = dataclasses.replace(choose_lengths(load_config("default"), COSTS, 200, spent=10), started_at=5.0)
    outcome = BudgetOutcome(plan, seconds=190.0, zssr_max_iters=900, zssr_iterations=(850, 400),
                            estimation_seconds=12.5, estimation_iterations=640)
    metrics = {(name, step): value for name, value, step in outcome.metrics()}
    assert metrics[("time_budget/actual_over_budget", 0)] == pytest.approx(0.95)
    assert metrics[("time_budget/zssr_iterations", 1)] == 400 and metrics[("time_budget/zssr_max_iters", 0)] == 900
    assert metrics[("time_budget/estimation_iterations", 0)] == 640
    assert outcome.summary() == f"time budget 200 s: the run took 190 s (predicted {plan.predicted_total:.0f} s)"


def test_a_budget_too_short_names_the_smallest_that_fits():
    with pytest.raises(ZSSRError, match=r"time budget of 30 s is too short.*--time-budget (\d+) or more") as err:
        choose_lengths(blind_fkp(), COSTS, 30, spent=20)
    smallest = int(err.value.args[0].split("--time-budget ")[1].split()[0])
    plan = choose_lengths(blind_fkp(), COSTS, smallest, spent=20)  # the floors, and the second left over
    # the cosine decay's max_iters stretched so that it stops after the floor's iterations
    assert (plan.estimation_runs, iterations_run(blind_fkp().train, plan.max_iters)) == (1, ZSSR_FLOOR)
    assert ESTIMATION_FLOOR["fkp"] <= plan.estimation_iters < ESTIMATION_FLOOR["fkp"] + 1 / COSTS.estimation_iteration
    with pytest.raises(ZSSRError):
        choose_lengths(blind_fkp(), COSTS, smallest - 1, spent=20)


def test_measured_costs_cover_every_stage(shared_data_dir):
    from zssr_tf.image_io import read_image

    import gc

    import tensorflow as tf

    image = read_image(shared_data_dir / "set5/lr_x4/bird.png")[0]
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, tf.data.Iterator)}  # held by other tests
    costs = measure_costs(load_config(None, TINY + ["scale_factors=[[2,2],[4,4]]"]), image)
    # the probe's pipeline is gone
    assert not [o for o in gc.get_objects() if isinstance(o, tf.data.Iterator) and id(o) not in before]
    assert costs.zssr_iteration > 0 and costs.estimation_iteration == 0
    assert len(costs.final_test) == len(costs.reconstruction_test) == 2
    assert costs.final_test[1] > costs.final_test[0] > 0  # x4's output is four times x2's
    assert costs.measuring > 0


def test_a_budget_too_short_stops_before_training(shared_data_dir, tmp_path, capsys):
    image = shared_data_dir / "set5/lr_x4/bird.png"
    code = main(["train", str(image), "--time-budget", "2", "--out", str(tmp_path / "out"), *TINY])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("zssr: error: a time budget of 2 s is too short") and "--time-budget" in err
    assert "[step" not in out and not list((tmp_path / "out").glob("*.png"))
    assert not mlflow.search_runs(search_all_experiments=True).shape[0]  # no run was started


def test_the_plan_and_the_wall_time_are_logged(shared_data_dir, tmp_path, capsys, monkeypatch):
    import zssr_tf.pipeline as pipeline

    def fixed_plan(config, image, gt=None, kernels=None, started_at=None):
        # Measuring is tested above; a fixed plan keeps this test short. Counted from 99 s before
        # the start, the deadline (less the 2 s final test) has passed when ZSSR starts, so it is
        # re-planned to its floor (3 here) and paced to stop there.
        plan = choose_lengths(config, COSTS, config.run.time_budget, spent=1.0)
        plan = dataclasses.replace(plan, max_iters=3, zssr_floor=3, started_at=started_at - 99)
        return apply_plan(config, plan), plan

    monkeypatch.setattr(pipeline, "fit_to_budget", fixed_plan)
    image = shared_data_dir / "set5/lr_x4/bird.png"
    code = main(["train", str(image), "--time-budget", "100", "--out", str(tmp_path / "out"), *TINY])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "time budget 100 s: 1 s spent (start-up, measuring), ZSSR 3 iterations" in out
    assert re.search(r"time budget 100 s: -?\d+ s left for ZSSR: 3 iterations per step \(planned 3\)", out)
    assert "time budget 100 s: the run took" in out
    run = mlflow.search_runs(search_all_experiments=True, output_format="list")[0]
    params = run.data.params
    assert params["time_budget/seconds"] == "100.0" and params["time_budget/max_iters"] == "3"
    assert params["train.max_iters"] == "3" and params["run.time_budget"] == "100.0"
    assert params["time_budget/zssr_ms_per_iteration"] == "150.0"
    assert run.data.tags["time_budget"].startswith("time budget 100 s:")
    metrics = run.data.metrics
    assert 95 < metrics["time_budget/actual_seconds"] < 200
    assert metrics["time_budget/actual_over_budget"] == pytest.approx(metrics["time_budget/actual_seconds"] / 100)
    assert metrics["time_budget/zssr_max_iters"] == 3 and metrics["time_budget/zssr_iterations"] == 3


def test_without_a_budget_nothing_is_measured(monkeypatch):
    import zssr_tf.pipeline as pipeline

    monkeypatch.setattr(pipeline, "fit_to_budget", lambda *a, **k: pytest.fail("measured without a budget"))
    config = load_config(None, TINY)
    assert pipeline.fit_run_to_budget(config, None) == (config, None)


@pytest.mark.slow
@pytest.mark.wall_clock
def test_a_budgeted_run_ends_within_a_fifth_of_its_budget(shared_data_dir, tmp_path):
    budget = 60
    command = [sys.executable, "-m", "zssr_tf.cli", "train", str(shared_data_dir / "set5/lr_x4/bird.png"),
               "--config", "fast", "--time-budget", str(budget), "--no-tracking", "--out", str(tmp_path)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert f"time budget {budget} s:" in done.stdout
    print(f"a {budget} s budget took {seconds:.1f} s ({seconds / budget:.2f})")
    assert 0.8 * budget <= seconds <= 1.2 * budget, done.stdout + done.stderr[-3000:]
