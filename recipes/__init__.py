"""The recipes: loop, data-builder, training and accelerate configs, found by name through
`culturespa.packaged` (this folder is installed as the package `culturespa.recipes`)."""
