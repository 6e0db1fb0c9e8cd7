#!/usr/bin/env bash
# Builds Actorvisor and runs a guest: `./run.sh [--kernel FILE] [-m SIZE] [--name NAME] ...` passes its
# arguments to `actorvisor run`. With no --kernel it boots the default guest (Debian's cloud kernel and a
# busybox initramfs, fetched and made on first use) to a shell on this terminal; Ctrl-A x quits.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Build quietly (ahead-of-time compiled, build.sh); stdout is the guest's console.
./build.sh
exec .build/host/actorvisor run "$@"
