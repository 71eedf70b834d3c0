"""opsnb: executable operations runbooks.

Runbooks are parameterized Jupyter notebooks (``runbooks/*.ipynb``) executed by papermill
against a target service; see ``docs/architecture.md`` for the layout.
"""

__version__ = "0.1.0"
