"""Mock of the national public service portal (Cổng Dịch vụ công quốc gia)."""
