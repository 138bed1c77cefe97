"""aiida-llpam: phonon angular momentum and L-L feedback in chiral insulators, from QE DFPT with AiiDA provenance."""

__version__ = "0.1.0"
