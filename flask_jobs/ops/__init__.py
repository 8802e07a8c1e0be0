"""Operator actions the CLI and the dashboard share (requeue, cancel, delete, stop, pause,
resume and empty a queue, requeue all matching) and the live state both show."""
