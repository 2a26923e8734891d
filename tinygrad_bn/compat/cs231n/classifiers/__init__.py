"""CS231n's classifiers package: `fc_net` (TwoLayerNet, FullyConnectedNet) and `cnn` (ThreeLayerConvNet)."""
