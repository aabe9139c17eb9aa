"""Query fingerprints: ``mysql`` (pt-query-digest compatible), ``postgres``, and ``classify``."""
