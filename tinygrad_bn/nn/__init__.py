"""Layers: Module/Parameter, Linear, activations, Sequential, and the norm layers."""

from tinygrad_bn.nn.layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "Dropout", "Flatten", "Linear", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
]
