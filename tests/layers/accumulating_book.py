"""The book-style worked example with one state slip: its dense layer adds each backward's
gradients into arrays it made on the first call, and nothing zeroes them. One call is right;
a second iteration returns the sum of both."""

import importlib.util
from pathlib import Path

import numpy as np

import mybackprop

_spec = importlib.util.spec_from_file_location(
    "layers_book", Path(__file__).resolve().parents[2] / "examples" / "layers_book.py")
book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book)


class Layer_Dense(book.Layer_Dense):
    def backward(self, dvalues):
        if not hasattr(self, "dweights"):
            self.dweights = np.zeros_like(self.weights)
            self.dbiases = np.zeros_like(self.biases)
        self.dweights += np.dot(self.inputs.T, dvalues)
        self.dbiases += np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = np.dot(dvalues, self.weights.T)


net = mybackprop.layer_objects(dense=Layer_Dense, activations={"relu": book.Activation_ReLU},
                               loss={"mse": book.Loss_MeanSquaredError}, weights="(in, out)",
                               bias_shape="(1, n)")
