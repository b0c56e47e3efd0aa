"""Stand-ins shared by the tests and the benchmarks (never imported by a service at run time):
a token issuer (`issuer.FakeIssuer`) and a minimal PDF (`pdf.minimal_pdf`)."""
