"""The mail use cases, each write one unit of work (rows and outbox events commit together);
MailApp (mail.py) mixes the groups together."""
