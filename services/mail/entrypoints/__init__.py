"""The mail service's edges: gRPC MailService (grpc.py), the SMTP servers (smtp.py)."""
