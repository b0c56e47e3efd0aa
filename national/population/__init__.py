"""Mock of the national population database (Cơ sở dữ liệu quốc gia về dân cư)."""
