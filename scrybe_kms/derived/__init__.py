"""What is derived from a rendered template: its stack policy and its access evaluation.

Reads the template as JSON (a dict), never the builders' objects, so what it reports is what
CloudFormation would receive.
"""
