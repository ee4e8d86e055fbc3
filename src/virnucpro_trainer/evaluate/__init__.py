"""Scoring any checkpoint on any merged data (evaluate.py): inputs, levels, outputs.
Imports nothing from the train package."""
