"""Dock panels and dialogs composed by the main window."""
