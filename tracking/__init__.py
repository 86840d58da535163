"""The dstrack domain: sources, certificate decoding, schedule, probes and the audit use case.

Nothing in this package imports a web or orchestration framework.
"""
