"""Survey data shipped with culturespa; installed as the package `culturespa.data`."""
