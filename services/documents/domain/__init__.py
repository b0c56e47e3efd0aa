"""The documents domain: types, numbering, the outgoing and incoming workflows, directive
tasks, who may do what, and the figures. No gRPC, SQL or bus code here."""
