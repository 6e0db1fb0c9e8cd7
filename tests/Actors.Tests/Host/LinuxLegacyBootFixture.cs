namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the default guest the old way, for <see cref="LinuxLegacyBootTests"/>: `noapic` (interrupts
/// through the 8259 pair only, the IOAPIC unused), the ACPI PM timer as clocksource, two vCPUs; the /init
/// measures its clock across a 10 s sleep, shows /proc/interrupts and reboots, which `--no-reboot` turns
/// into exit status 0. A virtio-rng sits in slot 3 and `pci=nomsi` keeps it on INTx: its interrupt goes through
/// the PIRQ router and the ACPI PCI link to the 8259 (level-triggered through the ELCR), and the /init reads
/// /dev/hwrng through it.
/// </summary>
public sealed class LinuxLegacyBootFixture
{
    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        echo "MARKER: actorvisor guest up"
        modprobe virtio_pci
        modprobe virtio_rng
        echo "RNGBYTES: $(dd if=/dev/hwrng bs=32 count=2 2>/dev/null | wc -c)"
        echo "CS: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
        echo "NPROC: $(nproc)"
        read up rest < /proc/uptime; echo "UPTIME0: $up"
        sleep 10
        read up rest < /proc/uptime; echo "UPTIME1: $up"
        echo "INTERRUPTS"
        cat /proc/interrupts
        echo "END-INTERRUPTS"
        reboot -f
        """;

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public GuestBootResult? Result { get; }

    public LinuxLegacyBootFixture()
    {
        if (SkipReason is null)
            Result = GuestBoot.Run(Init, "console=ttyS0 panic=-1 noapic pci=nomsi clocksource=acpi_pm", ["--no-reboot", "-c", "2", "--rng"]);
    }
}
