"""The reading tool: blinded, randomised unaided and aided reading sessions (``study readers``).

Modules: :mod:`~study.readers.tokens` (login tokens: random, stored hashed, compared in
constant time), :mod:`~study.readers.roster` (the readers CSV), :mod:`~study.readers.db`
(the SQLite reading database, WAL mode, append-only audit), :mod:`~study.readers.setup`
(``study readers init``), :mod:`~study.readers.app` (the Starlette web app),
:mod:`~study.readers.export` (the study's readings format).
"""
