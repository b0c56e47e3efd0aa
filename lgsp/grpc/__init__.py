"""gRPC plumbing shared by every LGSP service: server bootstrap, interceptors, errors, client.

Services import `build_server` and `serve_until_signal` from here, raise the exceptions of
lgsp.grpc.errors, and call other services through lgsp.grpc.client.channel().
"""

from lgsp.grpc.server import LgspServer, build_server, serve_until_signal

__all__ = ["LgspServer", "build_server", "serve_until_signal"]
