"""Judgements over the catalog: the RLS rule, what policies reach and the privileges they need, splinter-like lints,
squawk's table, the lock budget, root causes.
"""
