"""The example app end to end."""
