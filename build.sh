#!/usr/bin/env bash
# Builds the actorvisor host into .build/host with its assemblies and their dependencies compiled ahead of time
# (ReadyToRun): a guest's first instruction comes about 0.4 s sooner than from `dotnet build`'s output, whose
# code the .NET JIT compiles as it first runs. Prints the compiler's output only on failure.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if ! log=$(dotnet publish src/Host -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true \
    -o .build/host -v quiet -nologo 2>&1); then
  printf '%s\n' "$log" >&2
  exit 1
fi
