"""Testing helpers: hypothesis strategies (`tinygrad_bn.testing.strategies`)."""
