"""The emulator's control plane (`/_emulator`) and the traffic middleware tests steer."""
