"""The LGSP gateway core (X-Road-like): member registry and access rights, rate and
concurrency limits, the pass-through proxy, the signed message log, the event schema registry.

    from lgsp.gateway.app import build_spec      # the ServiceSpec of services/gateway
"""
