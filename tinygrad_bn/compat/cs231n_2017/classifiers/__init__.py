"""The 2017 handout's classifiers package: `fc_net` and `cnn`."""
