"""Ready means ready for the experiment: a project declares, per label
selector, the peripherals its devices must have (a camera at /dev/video0, a
serial port); a device that matches a rule but lacks one of them is online
but not ready, and says which one (``not_ready_reason``)."""
