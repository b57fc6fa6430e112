"""Functional ops under each mixer: naive references, chunked parallel forms and recurrent steps."""
