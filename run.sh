#!/usr/bin/env bash
# Builds Actorvisor and runs a guest: `./run.sh --kernel FILE [-m SIZE] [--name NAME]` passes its
# arguments to `actorvisor run`. With no arguments it boots a tiny demo boot sector that prints a
# greeting on COM1 and halts (exit status 2, bhyve's "halted").
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [ $# -eq 0 ]; then
  mkdir -p .build
  demo=.build/hello.bin
  # Real-mode boot sector at 0000:7C00 (16-bit code):
  #   mov bx, msg / next: mov al, [bx] / test al, al / jz done / mov ah, al
  #   wait: mov dx, 0x3FD / in al, dx / test al, 0x20 / jz wait      ; poll LSR.THRE
  #   mov al, ah / mov dx, 0x3F8 / out dx, al / inc bx / jmp next    ; write THR
  #   done: cli / hlt / msg: db "Hello from Actorvisor", 10, 0
  printf '\xbb\x1e\x7c\x8a\x07\x84\xc0\x74\x13\x88\xc4\xba\xfd\x03\xec\xa8\x20\x74\xf8\x88\xe0\xba\xf8\x03\xee\x43\xeb\xe7\xfa\xf4' > "$demo"
  printf 'Hello from Actorvisor\n\0' >> "$demo"
  set -- --kernel "$demo"
fi

# Build quietly (ahead-of-time compiled, build.sh); stdout is the guest's console.
./build.sh
exec .build/host/actorvisor run "$@"
