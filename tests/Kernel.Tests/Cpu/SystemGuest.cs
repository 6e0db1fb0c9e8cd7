using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// A machine for system-level guest programs: code is assembled at chosen addresses and the addresses of
/// its labels come back, so a test can write GDT, IDT and TSS entries that point into the program. The
/// program runs with <see cref="GuestRunner.RunLoaded"/> (to HLT, the exit port, shutdown or the budget).
/// </summary>
internal sealed class SystemGuest
{
    public readonly GuestMemory Memory;
    public readonly TestPlatform Platform = new();
    public readonly SoftwareCpu Cpu;

    public SystemGuest(ulong ramSize = 32 << 20, Func<TestPlatform, ICpuPlatform>? wrapPlatform = null)
    {
        Memory = new GuestMemory(ramSize);
        Cpu = new SoftwareCpu(0, Memory, wrapPlatform?.Invoke(Platform) ?? Platform);
        Platform.Cpu = Cpu;
    }

    /// <summary>
    /// A machine in the boot state of <paramref name="mode"/> (see <see cref="CpuSetup"/>) with
    /// <paramref name="program"/> loaded at <see cref="GuestRunner.DefaultLoad"/>, for stepping with
    /// <see cref="SoftwareCpu.StepRaw"/>. <paramref name="gdt"/>, if given, replaces the boot GDT (CS and
    /// the data segments keep their cached descriptors).
    /// </summary>
    public static SystemGuest Boot(StartMode mode, Action<Assembler> program, ulong[]? gdt = null)
    {
        var g = new SystemGuest();
        const ulong load = GuestRunner.DefaultLoad;
        switch (mode)
        {
            case StartMode.Real:
                CpuSetup.EnterRealMode(g.Cpu, (ushort)(load >> 4), 0);
                break;
            case StartMode.Protected32:
                CpuSetup.EnterFlatProtectedMode(g.Cpu, (uint)load, (uint)GuestRunner.DefaultStack);
                break;
            default:
                CpuSetup.EnterLongMode(g.Cpu, load, GuestRunner.DefaultStack);
                break;
        }
        if (gdt is not null)
        {
            g.Write64(GdtBase, gdt);
            g.Cpu.Gdtr = new DescriptorTable { Base = GdtBase, Limit = (ushort)(gdt.Length * 8 - 1) };
        }
        var a = new Assembler(mode switch { StartMode.Real => 16, StartMode.Protected32 => 32, _ => 64 });
        program(a);
        g.Load(a, mode == StartMode.Real ? 0 : load, load);
        return g;
    }

    /// <summary>Where <see cref="Boot"/> puts a test's own GDT.</summary>
    public const ulong GdtBase = 0x8000;

    /// <summary>Executes <paramref name="count"/> instructions with <see cref="SoftwareCpu.StepRaw"/>.</summary>
    public void Step(int count = 1)
    {
        for (var k = 0; k < count; k++) Cpu.StepRaw();
    }

    /// <summary>Executes one instruction that must fault, and returns the fault.</summary>
    public CpuFault StepFault() => Assert.Throws<CpuFault>(Cpu.StepRaw);

    /// <summary>Assembles <paramref name="a"/> at <paramref name="address"/>, writes it, returns the labels' addresses.</summary>
    public ulong[] Load(Assembler a, ulong address, params Label[] labels) => Load(a, address, address, labels);

    /// <summary>
    /// Assembles for instruction pointer <paramref name="ip"/> but writes at <paramref name="physical"/>
    /// (real and virtual-8086 code: IP is an offset in a segment); the labels come back as IPs.
    /// </summary>
    public ulong[] Load(Assembler a, ulong ip, ulong physical, params Label[] labels)
    {
        var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), ip, BlockEncoderOptions.ReturnNewInstructionOffsets);
        Memory.Write(physical, stream.ToArray());
        return labels.Select(l => result.GetLabelRIP(l)).ToArray();
    }

    public void Write64(ulong address, params ulong[] values)
    {
        for (var i = 0; i < values.Length; i++) Memory.WriteUInt64(address + (ulong)i * 8, values[i]);
    }

    /// <summary>Writes a 16-byte long-mode gate or system descriptor.</summary>
    public void Write128(ulong address, (ulong Low, ulong High) entry) => Write64(address, entry.Low, entry.High);

    public GuestResult Run(long maxInstructions = 1_000_000) => GuestRunner.RunLoaded(Cpu, Platform, Memory, maxInstructions);

    public string Console => Platform.Console.ToString();
}
