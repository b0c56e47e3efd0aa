"""Mock of the national payment platform (Nền tảng thanh toán trực tuyến, PayGov)."""
