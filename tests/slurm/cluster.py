"""A private one-node SLURM cluster for the SLURM test: munged + slurmctld + slurmd in a temporary folder.

Everything (munge key and socket, slurm.conf, state, logs, pid files) lives in the folder,
on free ports; it is stopped completely by
:meth:`OneNodeCluster.stop` (the daemons whose command line names the folder). No accounting
database: ``AccountingStorageType=accounting_storage/none``, so job states are read with
``squeue`` (the SLURM executor plugin's ``--slurm-status-command squeue``).
Needs Debian's ``slurm-wlm`` and ``munge`` and root (slurmd starts jobs as their user).

One system path is used: SLURM's default configuration path :data:`SYSTEM_CONF` is made a
symbolic link to the folder's ``slurm.conf`` while the cluster runs (and removed by
:meth:`OneNodeCluster.stop`), because the SLURM job-step executor plugin removes
``SLURM_CONF`` from the environment of the ``srun`` it starts inside each job. A machine
that already has a SLURM configuration there is left alone: :func:`why_not_available` says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "srun")
#: where SLURM's commands look for their configuration when SLURM_CONF is not set (Debian)
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def why_not_available() -> str | None:
    """Why a one-node cluster cannot be started here, or None when it can."""
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return (f"SLURM/munge binaries {missing} are not installed (Debian: apt-get install slurm-wlm munge; "
                ".ci/run installs them)")
    if os.geteuid() != 0:
        return "a one-node SLURM cluster needs root (slurmd starts each job as its user)"
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        return (f"{SYSTEM_CONF} exists: this machine has a SLURM configuration, which the test does not replace "
                "(the job-step plugin's srun reads it; see tests/slurm/cluster.py)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class OneNodeCluster:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` points SLURM's commands at it."""

    def __init__(self, root: Path, *, cpus: int = 2, memory_mb: int = 8000):
        self.root = Path(root)
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.host = socket.gethostname()
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def _write_config(self) -> None:
        r = self.root
        for d in ("munge", "state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o711)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        (r / "cgroup.conf").write_text("CgroupPlugin=autodetect\nCgroupMountpoint=/sys/fs/cgroup\n")
        self.conf.write_text("\n".join([
            "ClusterName=acnestudy",
            f"SlurmctldHost={self.host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SlurmdParameters=config_overrides",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MinJobAge=3600",
            "InactiveLimit=0",
            "KillWait=5",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            f"PartitionName=main Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    def start(self, *, timeout: float = 60.0) -> None:
        """Start munged, slurmctld and slurmd; wait until the node accepts jobs."""
        self._write_config()
        r = self.root
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        subprocess.run([_exe("munged"), "--force", f"--socket={self.munge_socket}",
                        f"--key-file={r / 'munge' / 'munge.key'}", f"--pid-file={r / 'munged.pid'}",
                        f"--log-file={r / 'log' / 'munged.log'}", f"--seed-file={r / 'munge' / 'munge.seed'}"],
                       check=True, env=self.env, capture_output=True)
        subprocess.run([_exe("slurmctld"), "-f", str(self.conf)], check=True, env=self.env, capture_output=True)
        subprocess.run([_exe("slurmd"), "-f", str(self.conf)], check=True, env=self.env, capture_output=True)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            p = subprocess.run([_exe("sinfo"), "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
            state = p.stdout.strip()
            if p.returncode == 0 and state.startswith(("idle", "mixed", "allocated")):
                return
            time.sleep(1)
        raise RuntimeError(f"the one-node SLURM cluster did not come up (node state {state!r}); logs in {r / 'log'}")

    def _daemons(self) -> list:
        """This cluster's daemons: the processes whose command line names this cluster's folder."""
        import psutil

        root = str(self.root)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if any(root in part for part in (proc.info.get("cmdline") or [])):
                found.append(proc)
        return found

    def stop(self) -> None:
        """Stop this cluster's daemons (slurmd, slurmctld, then munged) and remove the config link.

        A SLURM daemon may stay in its shutdown after one SIGTERM (seen with slurmd 22.05 on a
        loaded machine): it gets a second one after 10 s, and SIGKILL 5 s later.
        """
        import psutil

        if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.conf:
            SYSTEM_CONF.unlink()
        daemons = self._daemons()
        order = {"slurmd": 0, "slurmctld": 1, "munged": 2}
        daemons.sort(key=lambda p: order.get(Path((p.info.get("cmdline") or ["?"])[0]).name, 3))
        for proc in daemons:
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    proc.send_signal(sig)
                    proc.wait(timeout=wait)
                    break
                except psutil.TimeoutExpired:
                    continue
                except psutil.NoSuchProcess:
                    break
