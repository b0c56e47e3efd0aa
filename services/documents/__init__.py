"""Official documents (Nghị định 30/2020): workflow, edXML exchange, signatures, files."""
