"""Whole-scenario repairs built from the layers' check → plan steps (first: 0xC0000017)."""
