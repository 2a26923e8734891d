"""Layers: Module/Parameter, containers, Linear, activations, the norm layers, and nn.init."""

from tinygrad_bn.nn import init
from tinygrad_bn.nn.containers import Identity, ModuleDict, ModuleList
from tinygrad_bn.nn.layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.nn.norm import BatchNorm1d, BatchNorm2d, LayerNorm

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "Dropout", "Flatten", "Identity", "Linear", "Module", "ModuleDict", "ModuleList", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Tanh", "init",
]
