"""Measures of the paper's findings 2 and 3 (unit kinds, invariance) and the findings document."""
