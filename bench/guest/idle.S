/*
 * idle: a Multiboot kernel (ELF32) that masks both 8259s and sleeps in HLT with interrupts enabled, for
 * ever. Nothing programs a timer, so no interrupt comes: the VM stays up and idle, touching a few pages.
 * bench/run boots it in 1, 10 and 50 VMs to weigh a VM's own cost, and in QEMU (-kernel takes Multiboot).
 * Build: gcc -m32 -nostdlib -static -Wl,-Ttext=0x100000 -Wl,--build-id=none -o idle.elf idle.S
 */
    .section .text
    .globl _start
    .align 4
multiboot_header:
    .long 0x1BADB002            /* magic */
    .long 0                     /* flags: no extra requests */
    .long -(0x1BADB002 + 0)     /* checksum */
_start:
    cli
    movb $0xFF, %al
    outb %al, $0x21             /* mask every line of the master 8259 */
    outb %al, $0xA1             /* and of the slave */
    sti
1:  hlt
    jmp 1b
