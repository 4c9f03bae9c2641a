"""Layer kits (issue 25): a user's layers declared once, checked alone and as networks.

The worked examples (examples/layers_course.py: layer functions; examples/layers_book.py:
layer objects) pass with their declarations only; buggy twins, each one slip in one layer, are
caught and named at the user's own function.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import in_chromium, needs_chromium, share_of

import mybackprop as mb
from mybackprop.harness.contract import CandidateLoadError

# the layer zoo's slips, each put into the worked examples' own layers below
from mybackprop.layer_zoo import (
    Dense_Stale,
    Dense_Updating,
    affine_backward_averaged,
    affine_backward_global,
    affine_forward_global,
    relu_backward_in_place,
    relu_backward_masks_by_dout,
    relu_backward_unmasked,
    softmax_loss_summed,
)

ROOT = Path(__file__).resolve().parent.parent


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COURSE, BOOK = example("layers_course"), example("layers_book")


def course_kit(**replaced):
    """The course's layers with some functions replaced."""
    c = COURSE
    parts = {"affine_backward": c.affine_backward, "relu_backward": c.relu_backward,
             "softmax_loss": c.softmax_loss, **replaced}
    return mb.layer_functions(
        dense=(c.affine_forward, parts["affine_backward"]),
        activations={"relu": (c.relu_forward, parts["relu_backward"]),
                     "sigmoid": (c.sigmoid_forward, c.sigmoid_backward)},
        loss={"softmax_cross_entropy": parts["softmax_loss"]}, weights="(in, out)")


def by_layer(results):
    return {r.layer: r for r in results}


@pytest.mark.parametrize("module", [COURSE, BOOK], ids=["functions", "objects"])
def test_the_worked_examples_pass_with_their_declarations_only(module, tmp_path):
    results = mb.check_layers(module.net, cases=300)
    assert [r.verdict for r in results] == ["pass"] * len(results), \
        "\n".join(line for r in results for line in r.lines())
    assert all(r.cases == (300 if "," not in r.layer else 20) for r in results)
    checked = mb.check(module.net, cases=120, html=False, out=tmp_path / "run")
    assert checked.status == "pass", checked.summary


@pytest.mark.parametrize("replaced, layer, said, batch", [
    ({"relu_backward": relu_backward_masks_by_dout}, "activation relu",
     "relu_backward_masks_by_dout masks by the sign of dout instead of the sign of its input x",
     1),
    ({"relu_backward": relu_backward_unmasked}, "activation relu",
     "relu_backward_unmasked returns dout unchanged: it never multiplies by the derivative", 1),
    ({"affine_backward": affine_backward_averaged}, "dense",
     "affine_backward_averaged returns dw and db averaged over the samples", 2),
    ({"softmax_loss": softmax_loss_summed}, "loss softmax_cross_entropy",
     "softmax_loss_summed returns the gradient of the summed loss: it never divides by N", 2),
])
def test_a_buggy_layer_is_caught_alone_shrunk_and_named_at_its_function(replaced, layer, said,
                                                                        batch, tmp_path):
    kit = course_kit(**replaced)
    results = by_layer(mb.check_layers(kit, cases=100))
    assert results[layer].verdict == "fail"
    assert results[layer].diagnosis.startswith(said), results[layer].lines()
    assert all(r.verdict == "pass" for name, r in results.items() if name != layer)
    # shrunk to the fewest samples that show it (averaging is invisible in one sample), and one
    # unit per side
    smallest = results[layer].smallest
    assert (smallest.batch, smallest.n_in) == (batch, 1), smallest
    # the network built from it fails too
    assert mb.check(kit, cases=40, html=False, out=tmp_path / "run").status == "fail"


def test_a_book_layer_that_averages_its_gradients_is_named(tmp_path):
    class Layer_Dense_Averaged(BOOK.Layer_Dense):
        def backward(self, dvalues):
            super().backward(dvalues)
            self.dweights = self.dweights / len(dvalues)
            self.dbiases = self.dbiases / len(dvalues)

    kit = mb.layer_objects(dense=Layer_Dense_Averaged, activations={"relu": BOOK.Activation_ReLU},
                           loss={"mse": BOOK.Loss_MeanSquaredError}, weights="(in, out)",
                           bias_shape="(1, n)")
    dense = by_layer(mb.check_layers(kit, cases=60))["dense"]
    assert dense.verdict == "fail"
    assert dense.diagnosis.startswith("Layer_Dense_Averaged.backward returns dw and db averaged "
                                      "over the samples"), dense.lines()


def test_the_command_prints_each_layer_by_the_users_names(tmp_path):
    twin = tmp_path / "twin.py"
    twin.write_text(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('course', {str(ROOT / 'examples' / 'layers_course.py')!r})\n"  # noqa: E501
        "course = importlib.util.module_from_spec(spec); spec.loader.exec_module(course)\n"
        "import mybackprop\n"
        "def relu_backward(dout, cache):\n"
        "    return dout * (dout > 0)\n"
        "net = mybackprop.layer_functions(dense=(course.affine_forward, course.affine_backward),\n"
        "    activations={'relu': (course.relu_forward, relu_backward)},\n"
        "    loss={'softmax_cross_entropy': course.softmax_loss}, weights='(in, out)')\n")
    result = subprocess.run([sys.executable, "-m", "mybackprop", "layers", "--impl",
                             f"{twin}:net", "--cases", "50"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "PASS  dense: affine_forward / affine_backward: 50 cases" in out, out
    assert "FAIL  activation relu: relu_forward / relu_backward: 50 cases" in out, out
    assert "smallest failing case: N=1" in out, out
    assert "diagnosis: relu_backward masks by the sign of dout" in out, out
    assert ("2 of 3 layers pass alone; state across calls (stale cache, accumulation, "
            "parameters, aliasing): 4 of 4 checks pass; fix activation relu first: a "
            "network") in out, out


@pytest.mark.parametrize("declared, said", [
    ({"dense": (COURSE.affine_forward,)}, "dense is a tuple of 1: give the pair (forward, "
     "backward)"),
    ({"activations": {"swish": (COURSE.relu_forward, COURSE.relu_backward)}},
     "activation 'swish' is not one of the table's"),
    ({"loss": {}}, "declare at least one loss"),
    ({"targets": "one_hot"}, "unknown keyword targets=: layers take weights=, bias_shape= and "
     "layout="),
    ({"layout": "flat"}, "layout is 'flat': layers take 'rows' (x is (N, n)) or 'columns'"),
    ({"weights": "(in,out)"}, "weights is '(in,out)': choose one of"),
])
def test_a_declaration_that_cannot_be_used_is_one_line(declared, said):
    arguments = {"dense": (COURSE.affine_forward, COURSE.affine_backward),
                 "loss": {"softmax_cross_entropy": COURSE.softmax_loss}, **declared}
    with pytest.raises(CandidateLoadError) as raised:
        mb.layer_functions(**arguments)
    assert said in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


def test_a_layer_that_returns_the_wrong_thing_is_an_error_naming_it():
    def affine_forward_no_cache(x, w, b):
        return x.dot(w) + b

    kit = mb.layer_functions(dense=(affine_forward_no_cache, COURSE.affine_backward),
                             loss={"softmax_cross_entropy": COURSE.softmax_loss},
                             weights="(in, out)")
    dense = by_layer(mb.check_layers(kit, cases=5, shrink=False))["dense"]
    assert dense.verdict == "error"
    assert dense.problem == "affine_forward_no_cache returned a ndarray: return (out, cache)", \
        dense.problem


def test_not_a_kit_is_one_line():
    with pytest.raises(CandidateLoadError, match="is not a layer kit: declare one with"):
        mb.check_layers(mb.matrix)


# -- state across calls ------------------------------------------------------------------------

Dense_Accumulating = example("../tests/layers/accumulating_book").Layer_Dense  # += dweights


def book_kit(dense):
    return mb.layer_objects(dense=dense, activations={"relu": BOOK.Activation_ReLU},
                            loss={"mse": BOOK.Loss_MeanSquaredError}, weights="(in, out)",
                            bias_shape="(1, n)")


@pytest.mark.parametrize("kit, check, said", [
    (lambda: book_kit(Dense_Accumulating), "dense, accumulation",
     "Layer_Dense.backward accumulates its gradients across iterations (dweights += "
     "...) and nothing zeroes them"),
    (lambda: book_kit(Dense_Stale), "dense, stale cache",
     "Dense_Stale.backward after a second forward uses the first forward's inputs: a cache "
     "kept from an earlier call (stale)"),
    (lambda: book_kit(Dense_Updating), "dense, parameters",
     "Dense_Updating.backward changes the layer's weights: backward must leave the parameters "
     "alone"),
    (lambda: mb.layer_functions(dense=(affine_forward_global, affine_backward_global),
                                loss={"softmax_cross_entropy": COURSE.softmax_loss},
                                weights="(in, out)"), "dense, stale cache",
     "affine_backward_global ignores its cache argument"),
    (lambda: course_kit(relu_backward=relu_backward_in_place), "activation relu, parameters",
     "relu_backward_in_place changes its argument dout in place"),
])
def test_a_state_bug_one_call_never_shows_is_caught_by_its_state_check(kit, check, said):
    results = by_layer(mb.check_layers(kit(), cases=40, state_cases=10))
    layer = check.split(",")[0]
    assert results[layer].verdict == "pass", results[layer].lines()  # one call shows nothing
    assert results[check].verdict == "fail", results[check].lines()
    assert results[check].diagnosis.startswith(said), results[check].lines()
    # the other layers pass; this layer's other checks may fail too (a stale layer is stale on
    # a second iteration as well), but never naming another cause
    others = [r for name, r in results.items() if name.split(",")[0] != layer]
    assert all(r.verdict == "pass" for r in others), [line for r in others for line in r.lines()]
    for name, r in results.items():
        if name.split(",")[0] == layer and name != check and r.verdict != "pass":
            assert r.diagnosis.startswith(said) or "is not the VJP" in r.diagnosis, r.lines()


def test_a_cache_that_holds_x_itself_is_a_note_never_a_failure():
    results = by_layer(mb.check_layers(COURSE.net, cases=20, state_cases=10))
    aliasing = results["dense, aliasing"]
    assert aliasing.verdict == "pass" and aliasing.label == "NOTE"
    assert aliasing.notes[0].startswith("affine_forward keeps x itself in its cache, not a copy")
    assert results["activation sigmoid, aliasing"].label == "PASS"  # its cache is the output


# -- training trajectory -----------------------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_correct_kit_follows_pytorchs_and_optaxs_sgd(momentum):
    from mybackprop.harness.layer_check import kit_named
    from mybackprop.harness.trajectory import train

    for module in (COURSE, BOOK):
        t = train(kit_named(module.net), steps=5, momentum=momentum)
        assert t.verdict == "pass", t.lines()
        assert max(t.optax_distances) < 1e-14  # optax and torch.optim agree, in float64
        assert max(t.distances) < 1e-6  # the kit's float32 steps stay at float32's rounding
        assert np.allclose(t.losses, t.reference_losses, rtol=1e-5)


@pytest.mark.parametrize("dense, said", [
    (Dense_Accumulating, "step 2: the gradients are the sum of this step's and every earlier "
     "step's: accumulated across steps, never zeroed"),
    (Dense_Stale, "step 2: dW1, dW2 out of tolerance, though every earlier step was right: "
     "state kept between steps"),
    (Dense_Updating, "step 1: Dense_Updating.backward changed the layer's own parameters: with "
     "the optimiser's step the model trains twice"),
])
def test_a_state_bug_leaves_the_trajectory_at_the_step_it_shows(dense, said):
    from mybackprop.harness.layer_check import kit_named
    from mybackprop.harness.trajectory import train

    t = train(kit_named(book_kit(dense)), steps=4)
    assert t.verdict == "fail" and t.said == said, t.lines()


@pytest.fixture(scope="module")
def layers_report(tmp_path_factory):
    """`mybackprop layers --out` on the accumulating twin: its stdout and its folder."""
    out = tmp_path_factory.mktemp("layers") / "out"
    twin = ROOT / "tests" / "layers" / "accumulating_book.py"
    result = subprocess.run([sys.executable, "-m", "mybackprop", "layers", "--impl",
                             f"{twin}:net", "--cases", "60", "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout, out


def test_the_layers_report_holds_verdicts_trajectories_and_their_data(layers_report):
    stdout, out = layers_report
    assert "FAIL  dense, accumulation: Layer_Dense.forward / Layer_Dense.backward" in stdout
    assert "trajectories: 0 of 2 follow PyTorch's; fix dense, accumulation: state that one " \
        "call never shows" in stdout, stdout
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 2 and "accumulated across steps, never zeroed" in page
    data = json.loads((out / "layers.json").read_text())
    assert [t["first_wrong_step"] for t in data["trajectories"]] == [2, 2]
    assert all(len(t["loss"]) == len(t["distance_from_torch"]) == 5
               for t in data["trajectories"])
    assert {r["layer"]: r["verdict"] for r in data["layers"]}["dense, accumulation"] == "fail"


@needs_chromium
def test_the_layers_report_shows_the_trajectory_plots_in_chromium(layers_report, tmp_path):
    _, out = layers_report
    dom, pixels = in_chromium(out / "report.html", tmp_path / "profile", 1800)
    assert dom.count("<svg") == 2 and "dense, accumulation" in dom
    assert share_of(pixels, 0xc0392b) > 200  # the kit's trajectory, drawn in red, is on screen


# -- the layer zoo -----------------------------------------------------------------------------

def test_the_layer_zoos_reference_kits_pass_everything():
    from mybackprop import layer_zoo

    for kit in (layer_zoo.function_kit(), layer_zoo.object_kit()):
        results = mb.check_layers(kit, cases=100, state_cases=10)
        assert all(r.verdict == "pass" for r in results), [
            line for r in results for line in r.lines()]


@pytest.mark.parametrize("mutant", __import__("mybackprop.layer_zoo").layer_zoo.MUTANTS,
                         ids=lambda m: m.name)
def test_every_layer_mutant_is_caught_at_its_check_and_named(mutant):
    results = by_layer(mb.check_layers(mutant.make(), cases=60, state_cases=10))
    found = results[mutant.check]
    assert found.verdict == "fail", found.lines()
    assert found.diagnosis.startswith(mutant.said), found.lines()
    wrong = [r for r in results.values() if r.verdict != "pass" and r.diagnosis
             and not r.diagnosis.startswith(mutant.said) and "is not the VJP" not in r.diagnosis]
    assert not wrong, [line for r in wrong for line in r.lines()]  # no other cause named


class Dense_Shared(BOOK.Layer_Dense):
    """Keeps its inputs on the class: every Dense of a network shares the last one's."""

    def forward(self, inputs):
        Dense_Shared.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases

    def backward(self, dvalues):
        self.dweights = np.dot(Dense_Shared.inputs.T, dvalues)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = np.dot(dvalues, self.weights.T)


def records(checked):
    with open(checked.folder / "cases.jsonl") as lines:
        return [json.loads(line) for line in lines]


def test_a_network_failing_where_every_layer_passes_alone_says_it_is_the_composition(tmp_path):
    kit = book_kit(Dense_Shared)
    assert all(r.verdict == "pass" for r in mb.check_layers(kit, cases=40, state_cases=10))
    checked = mb.check(kit, cases=30, widths="4,4,4", html=False, out=tmp_path / "run")
    assert checked.status == "fail"
    fails = [r for r in records(checked) if r["verdict"] == "fail"]
    assert fails and all("every layer of the kit passes alone (50 cases each), so the mistake "
                         "is in how they work together" in r["diagnosis"]["summary"]
                         for r in fails), fails[0]["diagnosis"]


def test_a_network_failing_because_a_layer_fails_alone_names_that_layer(tmp_path):
    checked = mb.check(course_kit(relu_backward=relu_backward_masks_by_dout), cases=30,
                       html=False, out=tmp_path / "run")
    fails = [r for r in records(checked) if r["verdict"] == "fail"]
    assert fails and all(
        "activation relu (relu_forward / relu_backward_masks_by_dout) fails alone: "
        "relu_backward_masks_by_dout masks by the sign of dout" in r["diagnosis"]["summary"]
        for r in fails), fails[0]["diagnosis"]


class Optimizer_Ascent(BOOK.Optimizer_SGD):
    def update_params(self, layer):
        layer.weights += self.learning_rate * layer.dweights
        layer.biases += self.learning_rate * layer.dbiases


class Optimizer_Weights_Only(BOOK.Optimizer_SGD):
    def update_params(self, layer):
        layer.weights += -self.learning_rate * layer.dweights


def sgd_half_rate(w, dw, config=None):
    config = config or {}
    config.setdefault("learning_rate", 1e-2)
    w -= 0.5 * config["learning_rate"] * dw
    return w, config


@pytest.mark.parametrize("kit, said", [
    (lambda: mb.layer_objects(dense=BOOK.Layer_Dense, loss={"mse": BOOK.Loss_MeanSquaredError},
                              weights="(in, out)", bias_shape="(1, n)",
                              update=Optimizer_Ascent(0.1)),
     "step 1: Optimizer_Ascent.update_params adds the gradient (theta + lr g): it climbs the "
     "loss instead of descending"),
    (lambda: mb.layer_objects(dense=BOOK.Layer_Dense, loss={"mse": BOOK.Loss_MeanSquaredError},
                              weights="(in, out)", bias_shape="(1, n)",
                              update=Optimizer_Weights_Only(0.1)),
     "step 1: Optimizer_Weights_Only.update_params updates the weights and leaves the biases "
     "where they are"),
    (lambda: mb.layer_functions(dense=(COURSE.affine_forward, COURSE.affine_backward),
                                loss={"softmax_cross_entropy": COURSE.softmax_loss},
                                weights="(in, out)", update=sgd_half_rate),
     "step 1: sgd_half_rate moves the parameters by 0.5 x (-lr x gradient) with lr = 0.1"),
])
def test_a_wrong_update_step_is_named_at_the_step_and_the_function(kit, said):
    from mybackprop.harness.layer_check import kit_named
    from mybackprop.harness.trajectory import train

    declared = kit_named(kit())
    assert all(r.verdict == "pass" for r in mb.check_layers(declared, cases=20, state_cases=5))
    t = train(declared, steps=3)
    assert t.verdict == "fail" and t.said.startswith(said), t.lines()


def test_the_worked_examples_own_update_steps_follow_pytorch():
    from mybackprop.harness.layer_check import kit_named
    from mybackprop.harness.trajectory import train

    for module in (COURSE, BOOK):
        t = train(kit_named(module.net))
        assert t.verdict == "pass" and t.optimizer.split(" (")[0] in (
            "sgd", "Optimizer_SGD.update_params"), t.lines()


class Dense_Accumulating_On_Purpose(BOOK.Layer_Dense):
    """Adds each backward's gradients up, as a framework's layers do, with a zero_grad."""

    def zero_grad(self):
        self.dweights = np.zeros_like(self.weights)
        self.dbiases = np.zeros_like(self.biases)

    def backward(self, dvalues):
        if not hasattr(self, "dweights"):
            self.zero_grad()
        self.dweights = self.dweights + np.dot(self.inputs.T, dvalues)
        self.dbiases = self.dbiases + np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = np.dot(dvalues, self.weights.T)


class Dense_Zero_Grad_Forgets_Biases(Dense_Accumulating_On_Purpose):
    def zero_grad(self):
        self.dweights = np.zeros_like(self.weights)
        if not hasattr(self, "dbiases"):
            self.dbiases = np.zeros_like(self.biases)


def test_declared_accumulation_is_checked_for_its_zeroing():
    from mybackprop.harness.layer_check import kit_named
    from mybackprop.harness.trajectory import train

    def kit(dense):
        return mb.layer_objects(dense=dense, loss={"mse": BOOK.Loss_MeanSquaredError},
                                weights="(in, out)", bias_shape="(1, n)", zero_grad="zero_grad")

    results = by_layer(mb.check_layers(kit(Dense_Accumulating_On_Purpose), cases=40,
                                       state_cases=10))
    assert all(r.verdict == "pass" for r in results.values()), [
        line for r in results.values() for line in r.lines()]
    assert train(kit_named(kit(Dense_Accumulating_On_Purpose)), steps=3).verdict == "pass"
    broken = by_layer(mb.check_layers(kit(Dense_Zero_Grad_Forgets_Biases), cases=40,
                                      state_cases=10))["dense, accumulation"]
    assert broken.verdict == "fail" and broken.diagnosis.startswith(
        "Dense_Zero_Grad_Forgets_Biases.zero_grad does not zero the gradients"), broken.lines()
    with pytest.raises(CandidateLoadError, match="zero_grad is 'reset': give the name of the "
                                                 "method of Dense_Accumulating_On_Purpose"):
        mb.layer_objects(dense=Dense_Accumulating_On_Purpose,
                         loss={"mse": BOOK.Loss_MeanSquaredError}, zero_grad="reset")


def test_a_declared_write_into_dout_is_a_note():
    kit = mb.layer_functions(dense=(COURSE.affine_forward, COURSE.affine_backward),
                             activations={"relu": (COURSE.relu_forward, relu_backward_in_place)},
                             loss={"softmax_cross_entropy": COURSE.softmax_loss},
                             weights="(in, out)", writes_dout=True)
    parameters = by_layer(mb.check_layers(kit, cases=20, state_cases=5))[
        "activation relu, parameters"]
    assert parameters.verdict == "pass" and parameters.label == "NOTE"
    assert parameters.notes[0].startswith("relu_backward_in_place changes its argument dout in "
                                          "place (dx = dout; dx[...] = 0 writes into the "
                                          "caller's array), as declared")


def test_a_kit_with_samples_as_columns_is_checked_in_its_own_layout(tmp_path):
    columns = example("../tests/layers/columns_kit")
    results = mb.check_layers(columns.net, cases=100, state_cases=10)
    assert all(r.verdict == "pass" for r in results), [line for r in results
                                                        for line in r.lines()]
    assert mb.check(columns.net, cases=60, html=False, out=tmp_path / "run").status == "pass"

    def sigmoid_backward_alone(dout, a):
        return a * (1 - a)

    twin = mb.layer_functions(
        dense=(columns.dense_forward, columns.dense_backward),
        activations={"sigmoid": (columns.sigmoid_forward, sigmoid_backward_alone)},
        loss={"half_mse": columns.quadratic_cost}, reduction="batch_mean", layout="columns")
    sigmoid = by_layer(mb.check_layers(twin, cases=60, state_cases=0))["activation sigmoid"]
    assert sigmoid.verdict == "fail" and sigmoid.diagnosis.startswith(
        "sigmoid_backward_alone returns the derivative sigmoid'(x) alone"), sigmoid.lines()
