"""AiiDA calculation functions of aiida-llpam: thin wrappers around :mod:`aiida_llpam.physics`."""
