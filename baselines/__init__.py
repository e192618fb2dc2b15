"""Baseline methods, one subpackage each. Methods are found by name through ``baselines.registry``."""
