"""Provincial services, one package each (identity, documents, dossiers, search, mail, gateway).

`lgsp up` runs every sub-package that has a `__main__.py` as its own process
(`python -m services.<name>`); nothing needs registering.
"""
