"""The LGSP gateway (X-Road-like): member registry and access rights, rate and
concurrency limits, the pass-through proxy, the signed message log, the event schema registry.

    from services.gateway.plugin import PLUGIN      # the gateway as a platform plugin
"""
