"""The mail domain: addresses and their naming convention, mailboxes and folders, messages.
Plain Python: nothing here knows gRPC, SQL, SMTP or the bus."""
