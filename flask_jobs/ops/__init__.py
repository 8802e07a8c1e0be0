"""Operator actions the CLI and the dashboard share (requeue, cancel, delete, pause,
resume and empty a queue, requeue all matching) and the live counts both show."""
