"""Mock of the national document axis (Trục liên thông văn bản quốc gia): edXML mailboxes."""
