"""Real devices (installed as ``dualctl.hardware``): drivers, protocol emulators, HardwareBody."""
