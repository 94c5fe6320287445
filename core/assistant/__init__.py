"""The design assistant: questions in plain English mapped to intents, answered from the
studio's own read models (analysis, history, jobs), with suggestions that are mesh jobs."""
