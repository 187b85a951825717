from .result import Extraction
def extract_form(record_type, pages): return Extraction(record_type=record_type)
