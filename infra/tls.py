"""Per-run TLS certificates for the Dask scheduler and worker jobs of a Slurm run.

Other users of a cluster can reach its login and compute nodes, so an open Dask scheduler
port would let anyone run code as us and read the data. Each run (or notebook cluster) makes
a throw-away self-signed certificate with distributed's ``Security.temporary()`` and requires
it from every peer. The worker jobs read the certificate and key from owner-only files in a
directory on the shared filesystem; only the files' paths appear in the job script. The
caller removes the directory when the cluster closes.
"""

from __future__ import annotations

from pathlib import Path

from distributed.security import Security

from infra.atomic import write_atomic

OWNER_ONLY = 0o600


def run_security(directory: Path) -> Security:
    """A fresh certificate written to ``directory`` (``cert.pem``, ``key.pem``, mode 0600)
    and the ``Security`` that makes scheduler, workers and clients require it."""
    temporary = Security.temporary()  # type: ignore[no-untyped-call]
    cert, key = directory / "cert.pem", directory / "key.pem"
    write_atomic(cert, str(temporary.tls_scheduler_cert).encode(), mode=OWNER_ONLY)
    write_atomic(key, str(temporary.tls_scheduler_key).encode(), mode=OWNER_ONLY)
    paths = {"cert": str(cert), "key": str(key)}
    return Security(  # type: ignore[no-untyped-call]
        require_encryption=True,
        tls_ca_file=paths["cert"],  # self-signed: the certificate is its own authority
        tls_client_cert=paths["cert"],
        tls_client_key=paths["key"],
        tls_scheduler_cert=paths["cert"],
        tls_scheduler_key=paths["key"],
        tls_worker_cert=paths["cert"],
        tls_worker_key=paths["key"],
    )
