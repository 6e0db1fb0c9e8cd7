#!/usr/bin/env python3
"""Boot time of the default Debian guest to an init marker: Actorvisor and QEMU TCG, run alternately.

Usage: python3 bench/boot-vs-qemu.py [PAIRS]   (after ./build.sh and `actorvisor guest fetch`)

The /init prints a marker, asks for a line (typed by this script), and powers off. Each run prints the
seconds from process start to the marker and to the process's end; ours also prints its --stats line.
"""
import glob, os, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ours_bin = os.path.join(root, ".build/host/actorvisor")
kernel = glob.glob(os.path.expanduser("~/.cache/actorvisor/*/vmlinuz-*"))[0]
init = """#!/bin/sh
mount -t proc proc /proc
echo "MARKER: actorvisor guest up"
echo "TYPE-A-LINE:"
read line
poweroff -f
"""
workdir = tempfile.mkdtemp(prefix="boot-vs-qemu-")
script, initrd = os.path.join(workdir, "init.sh"), os.path.join(workdir, "initrd.cpio")
open(script, "w").write(init)
subprocess.run([ours_bin, "guest", "initramfs", "--init", script, "-o", initrd], check=True)
cmdline = "console=ttyS0 panic=-1"
ours = [ours_bin, "run", "--kernel", kernel, "--initrd", initrd, "--cmdline", cmdline, "--no-reboot", "--stats"]
qemu = ["qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
        "-kernel", kernel, "-initrd", initrd, "-append", cmdline]

def run(cmd):
    t0, marker = time.time(), None
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in iter(p.stdout.readline, b""):
        s = line.decode(errors="replace")
        if marker is None and "MARKER" in s:
            marker = time.time() - t0
        if "TYPE-A-LINE" in s:
            p.stdin.write(b"x\r"); p.stdin.flush()
    rc = p.wait()
    stats = [l for l in p.stderr.read().decode(errors="replace").splitlines() if "stats" in l]
    return marker, time.time() - t0, rc, stats[0] if stats else ""

for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    for name, cmd in (("actorvisor", ours), ("qemu-tcg", qemu)):
        m, t, rc, st = run(cmd)
        print(f"{name:10s} marker {m if m is not None else float('nan'):6.2f} s  total {t:6.2f} s  rc {rc}  {st}", flush=True)
