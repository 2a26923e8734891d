"""Layers: Module/Parameter, Linear, activations, Sequential, and the norm layers."""

from tinygrad_bn.nn.layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from tinygrad_bn.nn.module import Module, Parameter

__all__ = [
    "Dropout", "Flatten", "Linear", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
]
