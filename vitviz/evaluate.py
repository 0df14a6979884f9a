"""``python -m vitviz.evaluate``: the research evaluation (vitviz.evidence.evaluate)."""

from vitviz.evidence.evaluate import main

if __name__ == "__main__":
    main()
