"""Prompts (bottom layer): the paper's six templates (`templates`) and the task names built from
a way of asking, a template and a country (`task_names`)."""
