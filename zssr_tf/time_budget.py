"""Fit one run into a time budget (`run.time_budget`, seconds): measure what each stage costs on
this machine, then choose the kernel estimation's runs and iterations and ZSSR's `max_iters`.

Nothing is assumed about the machine's speed. `measure_costs` times a few iterations of each
stage on the image itself (the first, compiled one only counts as set-up), the periodic tests,
and one forward pass, one upscale and one back-projection from which the final test's cost
follows; `choose_lengths` then solves for the lengths (pure arithmetic, no timing) and
`fit_to_budget` does both and returns the config with the chosen lengths. A `cosine` learning
rate decays over `max_iters`, so a shorter run still ends its decay.

The budget counts from `started_at` (the CLI: when its `main()` started, after the interpreter's
start and the CLI's import; the process's exit after it is not counted either) to the written result:
what was spent before the plan (start-up, measuring) counts, and so do the estimation, ZSSR's
training with its reconstruction and ground-truth tests, and the final test. A new MLflow store
(its first run creates the database) and MLflow's closing work (artifacts, model) are not
planned for. Under the `policy` learning-rate schedule `max_iters` is an upper bound: the run
may stop sooner.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
import warnings
from dataclasses import dataclass
from statistics import median

import numpy as np

from zssr_tf.callbacks import ReconstructionTest, ScaleStepCallback, reconstruction_windows
from zssr_tf.config import Config, TrainConfig
from zssr_tf.ensemble import back_projection, ensemble_transforms, tiled_predict_for
from zssr_tf.errors import KernelEstimationError, ZSSRError
from zssr_tf.inference.plan import plan_scale_steps
from zssr_tf.kernel_estimation import estimate_kernel
from zssr_tf.kernels import gaussian_kernel, upscale_offset
from zssr_tf.metrics import evaluate
from zssr_tf.pacing import Deadline, cosine_stop_phase
from zssr_tf.resize import imresize
from zssr_tf.trainer import ZSSR

# Iterations timed per stage. The first is compiled and counts as set-up, and the next ones run
# slower while the input pipeline and the machine's caches warm up (ZSSR's settle after about 15
# iterations on a 2-core CPU): the median of the last half is the cost of one iteration.
ZSSR_PROBE_ITERATIONS = 24
ESTIMATION_PROBE_ITERATIONS = 16
# The fewest estimation iterations per run: KernelGAN's kernel starts near zero and needs a few
# hundred iterations before its constraints switch on (docs/blind-sr.md); FKP's latent decodes a
# plausible kernel from the first one. A configured value under the floor is kept.
ESTIMATION_FLOOR = {"kernelgan": 500, "fkp": 100}
# The fewest ZSSR iterations per scale step (a configured max_iters under it is kept).
ZSSR_FLOOR = 100
# The iterations a KernelGAN run is planned at when it stops once its kernel stops moving
# (kernel_stop_tolerance > 0): the latest stop measured with the default tolerance (runs stopped
# at 1,000-1,800 iterations, experiments/reports/blind-sr.md "Stopping KernelGAN early").
EXPECTED_STOPPED_RUN = 1800
# The side of the square tile whose forward pass gives the network's cost per output pixel.
PROBE_TILE = 256


@dataclass(frozen=True)
class StageCosts:
    """What each stage of a run costs on this machine, in seconds, as `measure_costs` found.

    `estimation_iteration`: one estimation iteration (0 without estimation); `estimation_setup`:
    what each estimation run costs beyond its iterations (building and compiling its networks).
    `zssr_iteration`: one ZSSR training iteration; `zssr_setup`: what each scale step costs
    beyond its iterations and tests. Per scale step: `reconstruction_test` and `gt_test` (one
    test each; 0 without a ground truth) and `final_test`. `measuring`: what measuring took."""

    estimation_iteration: float
    estimation_setup: float
    zssr_iteration: float
    zssr_setup: float
    reconstruction_test: tuple[float, ...]
    gt_test: tuple[float, ...]
    final_test: tuple[float, ...]
    measuring: float = 0.0


@dataclass(frozen=True)
class BudgetPlan:
    """The lengths chosen for a budget of `budget` seconds and what they are predicted to cost.

    `spent`: seconds already gone when the plan was made (start-up and measuring).
    `estimation_runs` x `estimation_iters`: the kernel estimation (0 x 0 without one);
    `max_iters`: ZSSR's iterations per scale step, `zssr_floor` the fewest it may get.
    `predicted_*`: seconds. `started_at`: the `time.perf_counter()` value the budget counts from."""

    budget: float
    spent: float
    estimation_runs: int
    estimation_iters: int
    max_iters: int
    steps: int
    costs: StageCosts
    predicted_estimation: float
    predicted_zssr: float
    predicted_final_test: float
    zssr_floor: int = ZSSR_FLOOR
    started_at: float = 0.0

    @property
    def predicted_total(self) -> float:
        """The seconds the whole run is predicted to take, what was spent before the plan included."""
        return self.spent + self.predicted_estimation + self.predicted_zssr + self.predicted_final_test

    def summary(self) -> str:
        """The plan in one line, e.g. `time budget 180 s: 21 s spent (start-up, measuring),
        estimation 3 runs x 500 iterations (~75 s), ZSSR 400 iterations (~60 s), final test ~10 s`."""
        estimation = (f"estimation {self.estimation_runs} run{'s' if self.estimation_runs > 1 else ''} x "
                      f"{self.estimation_iters} iterations (~{self.predicted_estimation:.0f} s), "
                      if self.estimation_runs else "")
        steps = f"{self.steps} steps x " if self.steps > 1 else ""
        return (f"time budget {self.budget:g} s: {self.spent:.0f} s spent (start-up, measuring), {estimation}"
                f"ZSSR {steps}{self.max_iters} iterations (~{self.predicted_zssr:.0f} s), "
                f"final test ~{self.predicted_final_test:.0f} s")

    def values(self) -> dict[str, float | int]:
        """The plan as flat name -> number pairs (seconds, milliseconds per iteration, counts), e.g.
        for logging as run parameters under a `time_budget/` prefix."""
        c = self.costs
        return {"seconds": self.budget, "spent_seconds": round(self.spent, 2),
                "measuring_seconds": round(c.measuring, 2),
                "estimation_ms_per_iteration": round(1000 * c.estimation_iteration, 2),
                "estimation_setup_seconds": round(c.estimation_setup, 2),
                "zssr_ms_per_iteration": round(1000 * c.zssr_iteration, 2),
                "zssr_setup_seconds": round(c.zssr_setup, 2),
                "reconstruction_test_seconds": round(sum(c.reconstruction_test), 3),
                "gt_test_seconds": round(sum(c.gt_test), 3),
                "estimation_runs": self.estimation_runs, "estimation_iters": self.estimation_iters,
                "max_iters": self.max_iters,
                "predicted_estimation_seconds": round(self.predicted_estimation, 1),
                "predicted_zssr_seconds": round(self.predicted_zssr, 1),
                "predicted_final_test_seconds": round(self.predicted_final_test, 1),
                "predicted_seconds": round(self.predicted_total, 1)}


@dataclass(frozen=True)
class BudgetOutcome:
    """What a run with a time budget did, next to its `plan`: `seconds` from the budget's start to
    the written result; the kernel estimation's `estimation_seconds` and `estimation_iterations`
    (all runs together, as they ran: a run may end early; 0 without an estimation);
    `zssr_max_iters`, ZSSR's length as re-planned when it started (`replan_zssr`); and
    `zssr_iterations`, each scale step's iterations as trained."""

    plan: BudgetPlan
    seconds: float
    zssr_max_iters: int
    zssr_iterations: tuple[int, ...]
    estimation_seconds: float = 0.0
    estimation_iterations: int = 0

    def summary(self) -> str:
        """The end line, e.g. `time budget 60 s: the run took 58 s (predicted 60 s)`."""
        return (f"time budget {self.plan.budget:g} s: the run took {self.seconds:.0f} s "
                f"(predicted {self.plan.predicted_total:.0f} s)")

    def metrics(self) -> list[tuple[str, float, int]]:
        """(name, value, step) triples to log as metrics: `time_budget/actual_seconds`,
        `actual_over_budget` (the ratio), `estimation_seconds`, `estimation_iterations`,
        `zssr_max_iters` (re-planned) at step 0, and `time_budget/zssr_iterations` once per
        scale step (step: its 0-based index)."""
        values = {"actual_seconds": self.seconds, "actual_over_budget": self.seconds / self.plan.budget,
                  "estimation_seconds": self.estimation_seconds, "estimation_iterations": self.estimation_iterations,
                  "zssr_max_iters": self.zssr_max_iters}
        return [(f"time_budget/{name}", value, 0) for name, value in values.items()] + [
            ("time_budget/zssr_iterations", iterations, index) for index, iterations in enumerate(self.zssr_iterations)]


def fit_to_budget(config: Config, image: np.ndarray, gt: np.ndarray | None = None,
                  kernels: list[np.ndarray] | None = None, seconds: float | None = None,
                  started_at: float | None = None) -> tuple[Config, BudgetPlan]:
    """Measure (`measure_costs`) and choose (`choose_lengths`) the lengths that fit a run on
    `image` (h, w, C) float32 in [0, 1] (with the ground truth `gt` (H, W, C) and the given
    `kernels` as the run takes them) into `seconds` (default: `config.run.time_budget`) counted
    from `started_at` (a `time.perf_counter()` value; default: now). Returns the config with the
    chosen lengths (`apply_plan`) and the plan. Raises ZSSRError when even the shortest run does
    not fit, naming the smallest budget that does, and ValueError without a budget."""
    started_at = time.perf_counter() if started_at is None else started_at
    seconds = config.run.time_budget if seconds is None else seconds
    if seconds is None:
        raise ValueError("fit_to_budget needs a budget: seconds=... or run.time_budget")
    costs = measure_costs(config, image, gt, kernels)
    plan = choose_lengths(config, costs, seconds, spent=time.perf_counter() - started_at)
    plan = dataclasses.replace(plan, started_at=started_at)
    return apply_plan(config, plan), plan


def apply_plan(config: Config, plan: BudgetPlan) -> Config:
    """`config` with the plan's `train.max_iters` and, when it estimates the kernel, its
    `kernel_estimation.estimation_runs` and `estimation_iters`."""
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, max_iters=plan.max_iters))
    if plan.estimation_runs:
        config = dataclasses.replace(config, kernel_estimation=dataclasses.replace(
            config.kernel_estimation, estimation_runs=plan.estimation_runs, estimation_iters=plan.estimation_iters))
    return config


def replan_zssr(config: Config, plan: BudgetPlan, now: float | None = None) -> tuple[Config, Deadline]:
    """Re-plan ZSSR from the clock just before it starts (`now`, a `time.perf_counter()` value;
    default: now): `config` (with the plan applied) with `train.max_iters` for the seconds
    actually left until the budget's end (`zssr_length`; whatever the estimation took, more or
    less than planned; at least the plan's `zssr_floor`), and the `pacing.Deadline` that
    `trainer.ZSSR(config, deadline=...)` paces the training to, with the plan's costs."""
    now = time.perf_counter() if now is None else now
    at = plan.started_at + plan.budget
    c, t = plan.costs, config.train
    max_iters = zssr_length(config, c, at - now, plan.zssr_floor)
    config = dataclasses.replace(config, train=dataclasses.replace(t, max_iters=max_iters))
    ran = iterations_run(config.train, max_iters)
    step_seconds = tuple(ran * c.zssr_iteration + _tests(ran, t.run_test_every) * r + _tests(ran, t.gt_test_every) * g
                         for r, g in zip(c.reconstruction_test, c.gt_test))
    return config, Deadline(at, step_seconds, c.final_test, c.zssr_setup, plan.zssr_floor)


def choose_lengths(config: Config, costs: StageCosts, seconds: float, spent: float = 0.0) -> BudgetPlan:
    """The lengths that fit a run with `costs` into `seconds`, `spent` of them already gone.

    The time left after the fixed costs (each scale step's set-up and final test) is shared
    between the kernel estimation (when `kernel_estimation.kernel` is "estimate") and ZSSR in
    the proportion the configured lengths would take, the estimation getting at least one run
    as configured when that fits beside ZSSR's floor. The estimation keeps its configured
    iterations per run and drops runs first (each run's set-up costs seconds, and fewer long
    runs estimate better than many short ones); only a single run is shortened, never under
    ESTIMATION_FLOOR; it never gets more runs or iterations than configured. A KernelGAN run that
    stops once its kernel stops moving is costed at EXPECTED_STOPPED_RUN iterations at most.
    ZSSR takes the rest, at least ZSSR_FLOOR iterations per step, more than configured when there
    is time for them. Raises ZSSRError when the floors do not fit, naming
    the smallest budget that does."""
    k = config.kernel_estimation
    estimating = k.kernel == "estimate"
    steps = len(costs.final_test)
    per_iteration = _zssr_iteration_cost(config, costs)
    fixed = _zssr_fixed(costs)
    runs, iters = (int(k.estimation_runs), int(k.estimation_iters)) if estimating else (0, 0)
    estimation_floor = min(iters, ESTIMATION_FLOOR.get(k.method, iters))
    zssr_floor = min(config.train.max_iters, ZSSR_FLOOR)
    stops_early = estimating and k.method == "kernelgan" and k.kernel_stop_tolerance > 0

    def estimation(r: int, n: int) -> float:
        """Seconds of r runs of at most n iterations (a run that stops early: EXPECTED_STOPPED_RUN)."""
        return r * (costs.estimation_setup + min(n, EXPECTED_STOPPED_RUN if stops_early else n)
                    * costs.estimation_iteration)

    left = seconds - spent - fixed
    shortest = estimation(min(runs, 1), estimation_floor) + zssr_floor * per_iteration
    if shortest > left:
        needed = math.ceil(spent + fixed + shortest)
        floors = (f"{estimation_floor} estimation iterations and " if estimating else "") + \
                 f"{zssr_floor} ZSSR iterations per scale step"
        raise ZSSRError(f"a time budget of {seconds:g} s is too short for this image and these settings here: "
                        f"the shortest run ({floors}, the final test, {spent:.0f} s already spent starting and "
                        f"measuring) needs about {needed} s; give --time-budget {needed} or more "
                        f"(run.time_budget), or a smaller image or config")
    if estimating:
        configured = estimation(runs, iters)
        share = configured / (configured + config.train.max_iters * per_iteration)
        # At least one run as configured when it fits beside ZSSR's floor: runs go before iterations.
        target = min(max(share * left, estimation(1, iters)), left - zssr_floor * per_iteration)
        fitting_runs = min(runs, int(target // estimation(1, iters)))
        if fitting_runs >= 1:
            runs = fitting_runs
        else:
            runs = 1
            iters = max(estimation_floor, min(iters, int((target - costs.estimation_setup)
                                                         // max(costs.estimation_iteration, 1e-9))))
    predicted_estimation = estimation(runs, iters)

    max_iters = zssr_length(config, costs, seconds - spent - predicted_estimation, zssr_floor)
    return BudgetPlan(budget=seconds, spent=spent, estimation_runs=runs, estimation_iters=iters, max_iters=max_iters,
                      steps=steps, costs=costs, predicted_estimation=predicted_estimation,
                      predicted_zssr=predicted_zssr(config, costs, max_iters), predicted_final_test=sum(costs.final_test),
                      zssr_floor=zssr_floor)


def zssr_length(config: Config, costs: StageCosts, seconds: float, floor: int) -> int:
    """ZSSR's `max_iters` per scale step for a run with `costs` whose ZSSR (set-up, training with
    its periodic tests, final tests) has `seconds` left: as many as fit, a `cosine` decay's
    stretched so that it ends (at `min_learning_rate`, a little before `max_iters`) in time; at
    least `floor`, even when they do not fit."""
    trained = int((seconds - _zssr_fixed(costs)) // max(_zssr_iteration_cost(config, costs), 1e-9))
    max_iters = max(floor, int(trained / _cosine_fraction(config.train)))
    while max_iters > floor and predicted_zssr(config, costs, max_iters) > seconds - sum(costs.final_test):
        max_iters -= 1  # the rounding of the tests' count and of the cosine's end
    return max_iters


def predicted_zssr(config: Config, costs: StageCosts, max_iters: int) -> float:
    """The seconds ZSSR's scale steps are predicted to take with `max_iters` and `costs`: set-up
    and training with the periodic tests (those at iteration 0 included), not the final tests."""
    ran = iterations_run(config.train, max_iters)
    t = config.train
    return len(costs.final_test) * (costs.zssr_setup + ran * costs.zssr_iteration) + sum(
        _tests(ran, t.run_test_every) * r for r in costs.reconstruction_test) + sum(
        _tests(ran, t.gt_test_every) * g for g in costs.gt_test)


def iterations_run(train: TrainConfig, max_iters: int) -> int:
    """About how many iterations a scale step trains with `max_iters` (at most `max_iters`): the
    `cosine` and `step` schedules stop once the learning rate falls under `min_learning_rate`
    (`callbacks.StopAtMinLearningRate`), e.g. 94 % of `max_iters` for the default cosine; the
    `policy` schedule may stop at any time, and `max_iters` is its upper bound."""
    start, low = train.learning_rate, train.min_learning_rate
    if train.learning_rate_schedule == "cosine":
        return min(max_iters, int(max_iters * _cosine_fraction(train)) + 2)
    if train.learning_rate_schedule == "step" and 0 < low < start and train.learning_rate_step_factor < 1:
        drops = math.floor(math.log(low / start) / math.log(train.learning_rate_step_factor)) + 1
        return min(max_iters, drops * train.learning_rate_step_every + 1)
    return max_iters


def _cosine_fraction(train: TrainConfig) -> float:
    """The part of a `cosine` schedule's `max_iters` before its rate falls under
    `min_learning_rate` (1 for other schedules, or a minimum of 0 or above the start)."""
    if train.learning_rate_schedule != "cosine":
        return 1.0
    return cosine_stop_phase(train.learning_rate, train.min_learning_rate)


def _zssr_fixed(costs: StageCosts) -> float:
    """Seconds ZSSR costs whatever its length: each step's set-up, final test and tests at iteration 0."""
    return sum(costs.final_test) + len(costs.final_test) * costs.zssr_setup + sum(costs.reconstruction_test) + \
        sum(costs.gt_test)


def _zssr_iteration_cost(config: Config, costs: StageCosts) -> float:
    """Seconds one more ZSSR iteration costs across all scale steps, its share of the periodic
    tests included (the test at iteration 0 is a fixed cost)."""
    t = config.train
    tests = sum(costs.reconstruction_test) / t.run_test_every
    gt = sum(costs.gt_test) / t.gt_test_every if t.gt_test_every else 0.0
    return len(costs.final_test) * costs.zssr_iteration + tests + gt


def _tests(iterations: int, every: int) -> int:
    """How many periodic tests run in `iterations` iterations when one runs every `every` from 0."""
    return (iterations - 1) // every + 1 if every else 0


def measure_costs(config: Config, image: np.ndarray, gt: np.ndarray | None = None,
                  kernels: list[np.ndarray] | None = None) -> StageCosts:
    """Time each stage of a run of `config` on `image` (h, w, C) float32 in [0, 1] on this
    machine (see `StageCosts`): ESTIMATION_PROBE_ITERATIONS iterations of the kernel estimation
    (when `kernel_estimation.kernel` is "estimate") and ZSSR_PROBE_ITERATIONS of ZSSR's first
    scale step with `gt` and
    `kernels` as the run takes them (a stand-in Gaussian kernel where the run will estimate one),
    then one reconstruction and ground-truth test and the pieces of the final test. The
    network's cost per pixel, the upscale's and the back-projection's give every step's tests
    and final test from its sizes, self-ensemble count and back-projections. Settings warnings
    are not shown (the run shows them). Takes a few seconds; raises what the run would raise
    for inputs it cannot take."""
    start = time.perf_counter()
    estimation_iteration = estimation_setup = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if config.kernel_estimation.kernel == "estimate":
            estimation_iteration, estimation_setup = _measure_estimation(config, image)
            kernels = [gaussian_kernel(13, 1.6, 1.1, angle=0.5)] * len(config.scale.scale_factors)
        probe = _ZSSRProbe(config, ZSSR_PROBE_ITERATIONS)
        probe_config = dataclasses.replace(config, train=dataclasses.replace(
            config.train, run_test_every=10 ** 9, gt_test_every=10 ** 9 if config.train.gt_test_every else 0))
        called = time.perf_counter()
        try:
            ZSSR(probe_config, callbacks=[probe], verbose=False).run(image, gt=gt, kernels=kernels)
        except _ProbeDone:
            pass
        gc.collect()  # the probe's tf.data pipeline, held in a reference cycle (see trainer.ZSSR._run_step)
    zssr_iteration = _steady(probe.stamps)
    reconstruction, gt_tests, final = _per_step_costs(config, image.shape[:2], probe, gt is not None)
    # The first iteration also ran the first step's tests at iteration 0.
    zssr_setup = max(probe.stamps[0] - called - zssr_iteration - reconstruction[0] - gt_tests[0], 0.0)
    return StageCosts(estimation_iteration, estimation_setup, zssr_iteration, zssr_setup, reconstruction, gt_tests,
                      final, measuring=time.perf_counter() - start)


def _measure_estimation(config: Config, image: np.ndarray) -> tuple[float, float]:
    """(seconds per iteration, seconds of set-up per run) of the kernel estimation on `image`:
    one run of ESTIMATION_PROBE_ITERATIONS iterations, whose kernel is thrown away (so short a run may
    collapse; that is no error here)."""
    probe = dataclasses.replace(config, kernel_estimation=dataclasses.replace(
        config.kernel_estimation, estimation_runs=1, estimation_iters=ESTIMATION_PROBE_ITERATIONS))
    stamps: list[float] = []
    called = time.perf_counter()
    try:
        estimate_kernel(image, probe, callback=lambda iteration, values: stamps.append(time.perf_counter()))
    except KernelEstimationError:
        pass
    iteration = _steady(stamps)
    return iteration, max(stamps[0] - called - iteration, 0.0)


def _steady(stamps: list[float]) -> float:
    """Seconds per iteration from the times `stamps` at which iterations ended: the median
    interval of the last half (the first ones are slower while things warm up)."""
    intervals = np.diff(stamps)
    return float(median(intervals[len(intervals) // 2:]))


class _ProbeDone(Exception):
    """Raised by `_ZSSRProbe` to end the probe's training once it has measured enough."""


class _ZSSRProbe(ScaleStepCallback):
    """Times the first scale step's iterations (`stamps`, after each one) and, after the last,
    the pieces of the tests and of the final test with the step's network and `config`'s
    settings, then ends the probe (`_ProbeDone`). Pieces (seconds): `reconstruction_seconds` (one
    test, as the run's callback does it), `pass_per_pixel` (the network on a tile, per output pixel),
    `upscale_per_pixel` and `back_projection_per_pixel` (at the step's output size),
    `evaluate_per_pixel` (the ground-truth test's scoring), `first_step` (the trainer.ScaleStep)."""

    def __init__(self, config: Config, iterations: int):
        super().__init__()
        self.config = config
        self.iterations = iterations
        self.stamps: list[float] = []
        self.evaluate_per_pixel = 0.0

    def on_scale_step_begin(self, step, predict) -> None:
        self.first_step, self.predict = step, predict

    def on_train_batch_end(self, batch, logs=None):
        self.stamps.append(time.perf_counter())
        if len(self.stamps) >= self.iterations:
            self._measure_tests()
            raise _ProbeDone

    def _measure_tests(self) -> None:
        step, predict = self.first_step, self.predict
        config = self.config
        t = config.train
        windows = reconstruction_windows(step.input_image.shape[:2], t.reconstruction_test,
                                         t.reconstruction_test_pixels, config.run.seed)
        test = ReconstructionTest(tiled_predict_for(predict, config), step.input_image, step.input_image,
                                  windows=windows, margin=config.model.depth)
        self.reconstruction_seconds = _timed(test.error)
        out_pixels = step.output_shape[0] * step.output_shape[1]
        tile = np.random.default_rng(0).random((1, min(PROBE_TILE, step.output_shape[0]),
                                                min(PROBE_TILE, step.output_shape[1]),
                                                step.input_image.shape[2]), np.float32)
        predict(tile)  # a new shape may be traced: not counted
        self.pass_per_pixel = _timed(lambda: predict(tile)) / (tile.shape[1] * tile.shape[2])
        offset = upscale_offset(step.relative_sf, config.scale.kernel_alignment)
        up = lambda: imresize(step.input_image, scale_factor=step.relative_sf, output_shape=step.output_shape,
                              kernel=config.scale.upscale_method, offset=offset)
        self.upscale_per_pixel = _timed(up) / out_pixels
        sr = np.clip(up(), 0, 1)
        self.back_projection_per_pixel = _timed(lambda: back_projection(
            sr, step.input_image, step.relative_sf, step.kernel, config.scale.upscale_method, offset)) / out_pixels
        if step.gt is not None:
            self.evaluate_per_pixel = _timed(lambda: evaluate(step.interpolated, step.gt, step.scale_factor)) / out_pixels


def _timed(function) -> float:
    """Seconds one call of `function` takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _per_step_costs(config: Config, input_shape: tuple[int, int], probe: _ZSSRProbe, has_gt: bool
                    ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per scale step, the seconds of one reconstruction test, one ground-truth test (0 without
    a ground truth) and the final test, scaled from the first step's measured pieces by each
    step's input and output sizes, self-ensemble count and back-projections."""
    first = probe.first_step
    first_input = first.input_image.shape[0] * first.input_image.shape[1]
    reconstruction, gt_tests, final = [], [], []
    for planned in plan_scale_steps(input_shape, config):
        in_pixels = planned.input_shape[0] * planned.input_shape[1]
        out_pixels = planned.output_shape[0] * planned.output_shape[1]
        cap = config.train.reconstruction_test_pixels
        reconstruction.append(probe.reconstruction_seconds * min(in_pixels, cap) / min(first_input, cap))
        gt_tests.append(out_pixels * (probe.pass_per_pixel + probe.evaluate_per_pixel) if has_gt else 0.0)
        # An estimated kernel is rarely symmetric: its self-ensemble without output_flip is one pass.
        symmetries = first.kernel_symmetries if config.kernel_estimation.kernel == "given" else (0,)
        variants = len(ensemble_transforms(planned.relative_sf, config.test.output_flip, symmetries))
        back_projections = planned.back_projection_iters * probe.back_projection_per_pixel
        final.append(out_pixels * (variants * (probe.upscale_per_pixel + probe.pass_per_pixel + back_projections)
                                   + back_projections + probe.upscale_per_pixel))  # the median's pass
    return tuple(reconstruction), tuple(gt_tests), tuple(final)
