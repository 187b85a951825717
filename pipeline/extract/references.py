def extract_references(pages): return []
def extract_tasks(pages): return []
