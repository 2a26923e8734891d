"""The book's ``common`` package: layers, functions, gradient, util, optimizer, trainer and the nets."""
