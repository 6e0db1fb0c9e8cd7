namespace Actorvisor.Kernel.Boot;

/// <summary>An IOAPIC as firmware reports it: its APIC ID, MMIO base, first GSI and number of pins.</summary>
public sealed record IoApicDescription(byte Id, uint Address, uint GsiBase, int Pins);

/// <summary>Polarity and trigger of an interrupt, as the MPS INTI flags and the ACPI MADT flags encode them (2 bits each).</summary>
public enum InterruptPolarity : ushort { ConformsToBus = 0, ActiveHigh = 1, ActiveLow = 3 }
public enum InterruptTrigger : ushort { ConformsToBus = 0, Edge = 1, Level = 3 }

/// <summary>An ISA IRQ that does not reach the IOAPIC pin of its own number, or not with ISA's edge/high signalling.</summary>
public sealed record InterruptOverride(byte IsaIrq, uint Gsi, InterruptPolarity Polarity, InterruptTrigger Trigger)
{
    /// <summary>The MPS/MADT flags word: polarity in bits 0-1, trigger mode in bits 2-3.</summary>
    public ushort Flags => (ushort)((ushort)Polarity | (ushort)Trigger << 2);
}

/// <summary>The ACPI fixed-hardware register blocks in port space (PIIX4 layout, as QEMU places it at 0x600).</summary>
public sealed record AcpiPmPorts(ushort Pm1aEvent, ushort Pm1aControl, ushort PmTimer)
{
    public const byte Pm1EventLength = 4, Pm1ControlLength = 2, PmTimerLength = 4;
    public static readonly AcpiPmPorts Piix4 = new(0x600, 0x604, 0x608);
}

/// <summary>A legacy serial port for the DSDT (a PNP0501 device with its ports and IRQ).</summary>
public sealed record SerialPortDescription(ushort Port, byte Irq);

/// <summary>
/// What the firmware tables (ACPI and MP) describe: the processors, the interrupt controllers, how ISA IRQs
/// reach the IOAPIC, the ACPI power-management block and the optional HPET and reset register. Plain data:
/// the VM's configuration builds it, the table writers only encode it.
/// </summary>
public sealed record PlatformDescription
{
    public const uint LocalApicAddress = 0xFEE0_0000;
    public const ulong StandardHpetAddress = 0xFED0_0000;
    /// <summary>The SLP_TYP value the DSDT's \_S5 names and the PM device treats as soft-off (bhyve's value).</summary>
    public const byte DefaultS5SleepType = 5;

    /// <summary>The local APIC ID of each processor, the boot processor first.</summary>
    public required IReadOnlyList<byte> ApicIds { get; init; }
    public required IoApicDescription IoApic { get; init; }
    public IReadOnlyList<InterruptOverride> Overrides { get; init; } = [];
    public AcpiPmPorts PmPorts { get; init; } = AcpiPmPorts.Piix4;
    public byte SciIrq { get; init; } = 9;
    public byte S5SleepType { get; init; } = DefaultS5SleepType;
    /// <summary>Base of an HPET block; when set, an HPET table is emitted.</summary>
    public ulong? HpetAddress { get; init; }
    /// <summary>The HPET's General Capabilities low dword (rev, timers-1, 64-bit, legacy route, vendor); QEMU's 3-timer value.</summary>
    public uint HpetBlockId { get; init; } = 0x8086_A201;
    /// <summary>A port that resets the machine when <see cref="ResetValue"/> is written (0xCF9 with 6), or null.</summary>
    public ushort? ResetPort { get; init; }
    public byte ResetValue { get; init; } = 6;
    /// <summary>True if a VGA controller is present; false tells the guest (FADT IAPC_BOOT_ARCH) not to probe for one.</summary>
    public bool VgaPresent { get; init; }
    public IReadOnlyList<SerialPortDescription> SerialPorts { get; init; } = [];
    /// <summary>The PCI host bridge, its windows and its INTx routing; null: no PCI (no PCI0, MCFG or PCI MP entries).</summary>
    public PciDescription? Pci { get; init; }
    /// <summary>CPUID.1 EAX and EDX of the processors, for the MP table's processor entries.</summary>
    public uint CpuSignature { get; init; } = DefaultCpu.Signature;
    public uint CpuFeatures { get; init; } = DefaultCpu.Leaf1Edx;

    private static readonly Cpu.CpuModel DefaultCpu = new();

    /// <summary>
    /// The PC every Actorvisor VM is: <paramref name="cpus"/> processors with APIC IDs 0..n-1, one 32-pin IOAPIC
    /// at 0xFEC00000 from GSI 0 with ID 0 (its ID register's power-on value in our model, and the ID QEMU's and
    /// bhyve's MADT give it: the tables must say what the register reads, or an OS that checks reprograms it or
    /// complains; xAPIC IDs of IOAPICs and CPUs need not differ), IRQ 0 on GSI 2, the SCI on IRQ 9
    /// level/active-high, the PM block at 0x600, reset through 0xCF9, COM1.
    /// </summary>
    public static PlatformDescription Standard(int cpus, bool hpet = false)
    {
        if (cpus is < 1 or > 254) throw new ArgumentOutOfRangeException(nameof(cpus));
        const byte sci = 9;
        return new PlatformDescription
        {
            ApicIds = Enumerable.Range(0, cpus).Select(i => (byte)i).ToArray(),
            IoApic = new IoApicDescription(0, 0xFEC0_0000, 0, 32),
            Overrides =
            [
                new InterruptOverride(0, 2, InterruptPolarity.ActiveHigh, InterruptTrigger.Edge),
                new InterruptOverride(sci, sci, InterruptPolarity.ActiveHigh, InterruptTrigger.Level),
            ],
            SciIrq = sci,
            HpetAddress = hpet ? StandardHpetAddress : null,
            ResetPort = 0xCF9,
            SerialPorts = [new SerialPortDescription(0x3F8, 4)],
        };
    }
}
