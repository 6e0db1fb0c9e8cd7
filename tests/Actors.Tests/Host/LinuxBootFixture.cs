namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the real default guest on one vCPU, shared by the assertions of <see cref="LinuxBootTests"/>:
/// the /init prints a marker, the clocksource and /proc/interrupts twice a second apart, asks for a line on
/// the console and echoes it, then powers off. Between, it measures its uptime across a 10 s sleep.
/// The machine has a virtio-pci function (a fake entropy device) in slot 3; the /init loads virtio_pci and
/// lists the PCI functions the kernel found with their IDs and drivers.
/// </summary>
public sealed class LinuxBootFixture
{
    public const string Prompt = "TYPE-A-LINE:";
    public const string Typed = "hello from the host";

    public const string Init = """
        #!/bin/sh
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        echo "MARKER: actorvisor guest up"
        modprobe virtio_pci
        for d in /sys/bus/pci/devices/*; do
          drv=none; [ -e $d/driver ] && drv=$(ls -l $d/driver | sed 's#.*/##')
          echo "PCIDEV: ${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/class) $(cat $d/irq) $drv"
        done
        for d in /sys/bus/virtio/devices/*; do echo "VIRTIODEV: ${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/status)"; done
        echo "PCI-KMSG:"; dmesg | grep -i -E 'pci|virtio' | grep -i -E 'error|fail|invalid|conflict|can.t|bug' ; echo "END-PCI-KMSG"
        echo "CLOCKSOURCE: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
        echo "INTERRUPTS-1"
        cat /proc/interrupts
        sleep 1
        echo "INTERRUPTS-2"
        cat /proc/interrupts
        echo "END-INTERRUPTS"
        read up rest < /proc/uptime; echo "UPTIME0: $up"
        sleep 10
        read up rest < /proc/uptime; echo "UPTIME1: $up"
        echo "TYPE-A-LINE:"
        read line
        echo "GOT:[$line]"
        poweroff -f
        """;

    public string? SkipReason { get; } = GuestBoot.SkipReason;
    public GuestBootResult? Result { get; }

    /// <summary>The PCI slot of the fake virtio device.</summary>
    public const int VirtioSlot = 3;

    public LinuxBootFixture()
    {
        Actorvisor.Host.Vm.VirtioDeviceCatalog.Register(Devices.Pci.FakeVirtioDevice.CatalogName, _ => new Devices.Pci.FakeVirtioDevice());
        if (SkipReason is null)
            Result = GuestBoot.Run(Init, "console=ttyS0 panic=-1", ["--no-reboot", "--stats", "-s", $"{VirtioSlot},{Devices.Pci.FakeVirtioDevice.CatalogName}"],
                Prompt, Typed);
    }
}
