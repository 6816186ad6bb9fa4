"""The local demo: everything on one machine, started by `smvue-sync dev`."""
