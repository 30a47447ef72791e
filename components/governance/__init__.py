"""Governance: carbon budgets per team, the estimate of a submission, the budget policy (Rego).

Plain Python (no kfp import).
"""
