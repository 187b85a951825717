"""placeholder"""
from pathlib import Path
def load(path: Path):
    return None
def version(path: Path) -> str:
    return "rules-only"
def apply_model(ex, pages, nlp):
    return None
