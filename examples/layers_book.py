"""A book-style network built from layer objects, checked with its declaration alone.

Each layer is a class whose forward(inputs) keeps what backward(dvalues) needs and stores
self.output; backward stores self.dinputs (and a dense layer self.dweights, self.dbiases).
Weights are (in, out) and biases (1, n), as in `np.dot(inputs, self.weights) + self.biases`;
Optimizer_SGD is the update step a training loop calls.
The last lines declare which class is which; nothing is converted by hand:

    mybackprop layers --impl examples/layers_book.py:net     # every layer alone
    mybackprop check  --impl examples/layers_book.py:net     # networks built from them
"""

import numpy as np

import mybackprop


class Layer_Dense:
    def __init__(self, n_inputs, n_neurons):
        self.weights = 0.01 * np.random.randn(n_inputs, n_neurons)
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases

    def backward(self, dvalues):
        self.dweights = np.dot(self.inputs.T, dvalues)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = np.dot(dvalues, self.weights.T)


class Activation_ReLU:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0


class Activation_Tanh:
    def forward(self, inputs):
        self.output = np.tanh(inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues * (1 - self.output ** 2)


class Loss_MeanSquaredError:
    def forward(self, y_pred, y_true):
        return np.mean((y_true - y_pred) ** 2)

    def backward(self, dvalues, y_true):
        samples, outputs = dvalues.shape
        self.dinputs = -2 * (y_true - dvalues) / outputs / samples


class Activation_Softmax_Loss_CategoricalCrossentropy:
    """Softmax and cross-entropy in one, on the scores: forward returns the mean loss."""

    def forward(self, inputs, y_true):
        shifted = inputs - np.max(inputs, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        self.output = np.exp(log_probs)
        samples = len(inputs)
        return np.mean(-log_probs[range(samples), y_true])

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        self.dinputs = dvalues.copy()
        self.dinputs[range(samples), y_true] -= 1
        self.dinputs = self.dinputs / samples


class Optimizer_SGD:
    def __init__(self, learning_rate=1.0):
        self.learning_rate = learning_rate

    def update_params(self, layer):
        layer.weights += -self.learning_rate * layer.dweights
        layer.biases += -self.learning_rate * layer.dbiases


net = mybackprop.layer_objects(
    dense=Layer_Dense,
    activations={"relu": Activation_ReLU, "tanh": Activation_Tanh},
    loss={"mse": Loss_MeanSquaredError,
          "softmax_cross_entropy": Activation_Softmax_Loss_CategoricalCrossentropy},
    weights="(in, out)", bias_shape="(1, n)",
    update=Optimizer_SGD(learning_rate=0.1),
)
