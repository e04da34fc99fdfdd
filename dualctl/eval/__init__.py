"""Evaluation: ablation arms, statistics, plots and videos."""
