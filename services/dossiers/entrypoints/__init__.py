"""How calls reach the use cases: the gRPC servicer."""
