"""An emulator of the Microsoft Graph v1.0 calendar surface and the Microsoft identity
platform (v2.0 endpoints), faithful to Microsoft's public documentation.

Tests, benchmarks and the local demo talk to it instead of the real cloud; the production
code cannot tell the difference for the calls it makes.
"""
