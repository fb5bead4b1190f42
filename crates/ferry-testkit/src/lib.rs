//! Shared test helpers: a scriptable origin server, a TLS test CA and a launcher for the real `ferry` binary.
