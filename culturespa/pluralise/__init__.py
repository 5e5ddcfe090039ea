"""CultureSPA's self-pluralising data builder: generate, filter, answer, collect, build.

See README.md in this folder for the stages, the config and the filter report.
"""
