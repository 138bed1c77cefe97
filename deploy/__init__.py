"""Provisioning of this machine for aiida-llpam's scale-out: PostgreSQL, RabbitMQ, SLURM and munge (Debian, no systemd).

Not part of the plugin: ``aiida_llpam`` never imports this folder. Run as root from the repository:
``python deploy/services.py up|down|status`` (docs/scaleout.md); ``up`` ends with the AiiDA configuration of the
daemon profile (``aiida_llpam.daemon_profile.ensure_daemon_profile``, also `aiida-llpam setup --daemon-profile`).
"""
