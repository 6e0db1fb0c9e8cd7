using Actorvisor.Actors.Tests.Telemetry;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// One boot of the real default guest on one vCPU, shared by the assertions of <see cref="LinuxBootTests"/>:
/// the /init prints a marker, the clocksource and /proc/interrupts twice a second apart, asks for a line on
/// the console and echoes it, then powers off. Between, it measures its uptime across a 10 s sleep.
/// The machine has a virtio-rng behind virtio-pci in slot 3 (`-s 3,virtio-rng`); the /init loads virtio_pci and
/// virtio_rng, lists the PCI functions the kernel found with their IDs and drivers, and reads /dev/hwrng.
/// The run serves its metrics on 127.0.0.1 (`--metrics`) to Debian's Prometheus, which scrapes them every second
/// through the boot and is asked for the rates afterwards (<see cref="LinuxPrometheusTests"/>).
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
        modprobe virtio_rng
        for d in /sys/bus/pci/devices/*; do
          drv=none; [ -e $d/driver ] && drv=$(ls -l $d/driver | sed 's#.*/##')
          echo "PCIDEV: ${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/class) $(cat $d/irq) $drv"
        done
        for d in /sys/bus/virtio/devices/*; do echo "VIRTIODEV: ${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/status)"; done
        echo "HWRNG: $(cat /sys/class/misc/hw_random/rng_current)"
        echo "RNGBYTES: $(dd if=/dev/hwrng bs=32 count=2 2>/dev/null | wc -c)"
        echo "PCI-KMSG:"; dmesg | grep -i -E 'pci|virtio' | grep -v 'pci=nocrs' | grep -i -E 'error|fail|invalid|conflict|can.t|bug' ; echo "END-PCI-KMSG"
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

    /// <summary>The VM's name, its series' vm_name label (the process id keeps it apart from other runs' control sockets).</summary>
    public static readonly string VmName = $"linux-boot-{Environment.ProcessId}";

    /// <summary>The exit rate of the whole VM, per second over 10 s (10 scrapes).</summary>
    public static readonly string ExitRateQuery = $"sum(rate(actorvisor_vcpu_exits_total{{vm_name=\"{VmName}\"}}[10s]))";

    /// <summary>Linux's local APIC timer: the interrupts a vCPU took at vector 0xEC (LOCAL_TIMER_VECTOR), per second.</summary>
    public static readonly string TimerRateQuery =
        $"sum(rate(actorvisor_interrupts_injected_total{{vm_name=\"{VmName}\",irq_vector=\"236\"}}[10s]))";

    /// <summary>What Prometheus recorded of the boot (null: no boot).</summary>
    public PrometheusRecording? Prometheus { get; }

    public LinuxBootFixture()
    {
        if (SkipReason is not null) return;
        var metrics = Loopback.FreePort();
        GuestBootResult? result = null;
        Prometheus = PrometheusServer.Around(metrics,
            () => result = GuestBoot.Run(Init, "console=ttyS0 panic=-1",
                ["--no-reboot", "--stats", "--name", VmName, "--metrics", $"127.0.0.1:{metrics}", "-s", $"{VirtioSlot},virtio-rng"], Prompt, Typed),
            ExitRateQuery, TimerRateQuery);
        Result = result;
    }
}
