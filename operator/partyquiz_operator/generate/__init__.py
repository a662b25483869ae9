"""Build-time generators: the CRD and its reference docs, the alert rules file, the dashboard.

Apart from the runtime: the operator's reconcile path never imports this package (an
import-linter contract says so); ``partyquiz-operator crd`` is the one command that does.

    python -m partyquiz_operator.generate [--root DIR] [--check]
"""
