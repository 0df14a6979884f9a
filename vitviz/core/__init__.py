"""The bottom of vitviz: what every other part may use and that uses none of them — settings and
paths, model facts and the loaded model, the family registry, loading helpers, preprocessing, limits,
caches, words (i18n), the CPU's abilities and the frameworks' private API (compat)."""
