using System.Text;
using Actorvisor.Host.Vm;
using Actorvisor.Kernel.Cpu;
using Actorvisor.TestSupport;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Actors.Tests.Host;

/// <summary>
/// SMP bring-up through the real VM supervisor, as an OS does it (SDM Vol. 3A, 10.4.4; MP spec B.4): the BSP of a
/// Multiboot kernel copies a real-mode trampoline below 1 MiB, broadcasts INIT, INIT de-assert, SIPI, SIPI to all
/// excluding self; each AP enters protected mode (flat data), reads CPUID's initial APIC ID and its LAPIC ID
/// register, takes a slot with LOCK XADD, writes both IDs there, and counts itself done with LOCK INC. The BSP waits
/// for N-1 and prints the table; the test checks the IDs against the topology.
/// </summary>
public class SmpBootTests : IDisposable
{
    private const uint Trampoline = 0x8000; // SIPI vector 08h
    private const uint GdtPtr = 0x6000, DataSel = 0x6008, NextSlot = 0x6010, Done = 0x6014, Table = 0x6100;
    private const uint Icr = 0xFEE00300, LapicId = 0xFEE00020;
    private const int Passed = 0x11, TimedOut = 0x7E;
    private readonly List<string> _files = new();

    public void Dispose()
    {
        foreach (var f in _files) File.Delete(f);
    }

    /// <summary>The AP's code at 08000h, entered at 0800:0000 in real mode.</summary>
    private static byte[] ApTrampoline() => GuestImages.Assemble(16, 0, a =>
    {
        var halt = a.CreateLabel();
        a.cli();
        a.xor(ax, ax);
        a.mov(ds, ax);
        a.lgdt(__[GdtPtr]);                      // the BSP's GDT (its base is below 16 MiB: a 16-bit LGDT loads 24 bits)
        a.mov(dx, __word_ptr[DataSel]);          // read while DS is still the real-mode segment
        a.mov(eax, cr0);
        a.or(al, 1);
        a.mov(cr0, eax);                         // protected mode; CS keeps its real-mode cache, no far jump needed
        a.mov(ds, dx);                           // flat 4 GiB data
        a.mov(ebx, LapicId);
        a.mov(esi, __dword_ptr[ebx]);
        a.shr(esi, 24);                          // LAPIC ID register
        a.mov(eax, 1);
        a.cpuid();
        a.shr(ebx, 24);                          // CPUID.1:EBX[31:24], the initial APIC ID
        a.mov(edi, ebx);
        a.mov(ecx, 1);
        a.mov(ebx, NextSlot);
        a.@lock.xadd(__dword_ptr[ebx], ecx);     // ECX = this AP's slot
        a.mov(ebx, Table);
        a.mov(__dword_ptr[ebx + ecx * 8], edi);
        a.mov(__dword_ptr[ebx + ecx * 8 + 4], esi);
        a.mov(ebx, Done);
        a.@lock.inc(__dword_ptr[ebx]);
        a.Label(ref halt);
        a.cli();
        a.hlt();
        a.jmp(halt);
    });

    private static void Delay(Assembler a, int n)
    {
        var l = a.CreateLabel();
        a.mov(ecx, n);
        a.Label(ref l);
        a.pause();
        a.dec(ecx);
        a.jnz(l);
    }

    private static void Bsp(Guest32 g, int cpus)
    {
        var a = g.A;
        var tramp = ApTrampoline();
        var after = a.CreateLabel();
        var wait = a.CreateLabel();
        var ok = a.CreateLabel();
        a.sgdt(__[GdtPtr]);
        a.mov(ax, ds);
        a.mov(__word_ptr[DataSel], ax);
        a.mov(__dword_ptr[NextSlot], 0);
        a.mov(__dword_ptr[Done], 0);
        // Copy the trampoline (inline after a CALL, whose pushed address is its start) to 08000h.
        a.call(after);
        a.db(tramp);
        a.Label(ref after);
        a.pop(esi);
        a.mov(edi, Trampoline);
        a.mov(ecx, tramp.Length);
        a.cld();
        a.rep.movsb();

        g.Print("bsp apic=");
        a.mov(eax, 1);
        a.cpuid();
        a.mov(eax, ebx);
        a.shr(eax, 24);
        g.Hex();
        g.Print(" lapic=");
        a.mov(eax, __dword_ptr[LapicId]);
        a.shr(eax, 24);
        g.Hex();
        g.Print("\n");

        // INIT-SIPI-SIPI to all excluding self (ICR shorthand 11b), with the MP spec's INIT de-assert in between.
        a.mov(__dword_ptr[Icr], 0x000C_4500);  // INIT, level, assert
        Delay(a, 10_000);
        a.mov(__dword_ptr[Icr], 0x000C_8500);  // INIT, level, de-assert
        Delay(a, 10_000);
        a.mov(__dword_ptr[Icr], 0x000C_4600 | (Trampoline >> 12));
        Delay(a, 1_000);
        a.mov(__dword_ptr[Icr], 0x000C_4600 | (Trampoline >> 12));

        // Wait (bounded) for every AP.
        a.mov(ecx, 300_000_000);
        a.Label(ref wait);
        a.cmp(__dword_ptr[Done], cpus - 1);
        a.je(ok);
        a.pause();
        a.dec(ecx);
        a.jnz(wait);
        g.Field("timeout done", __dword_ptr[Done], "\n");
        a.mov(eax, TimedOut);
        g.ExitWithEax();

        a.Label(ref ok);
        g.Field("aps", __dword_ptr[Done], "\n");
        for (var i = 0; i < cpus - 1; i++)
        {
            g.Field("ap apic", __dword_ptr[Table + (uint)i * 8]);
            g.Field("lapic", __dword_ptr[Table + (uint)i * 8 + 4], "\n");
        }
        a.mov(eax, Passed);
        g.ExitWithEax();
    }

    private (VmProtocol.VmExited Outcome, string Console) Boot(CpuTopology topology)
    {
        var path = GuestImages.WriteTemp(MultibootKernels.Elf(0x100000, g => Bsp(g, topology.Cpus)), ".elf");
        _files.Add(path);
        var console = new MemoryStream();
        var config = new VmConfig("smp", 32 << 20, path, console)
        {
            Topology = topology,
            Devices = [new DeviceSpec.IsaDebugExit(0xF4, 4)],
        };
        var outcome = VmRunner.Run(config);
        return (outcome, Encoding.ASCII.GetString(console.ToArray()));
    }

    [Theory]
    [InlineData("2")]
    [InlineData("cpus=4,sockets=2,cores=3,maxcpus=6")] // APIC IDs 0, 1, 2 and 4: the core field is 2 bits wide
    public void EveryApStartsFromInitSipiSipiAndReportsItsApicId(string spec)
    {
        var topology = CpuTopology.Parse(spec);
        var (outcome, console) = Boot(topology);

        Assert.True(outcome.Code == VmExitCode.GuestRequested && outcome.ExitStatus == ((Passed << 1) | 1), // isa-debug-exit: (value << 1) | 1
            $"{outcome.Code} {outcome.GuestStatus} {outcome.Message}\n{console}");
        Assert.Contains("bsp apic=00000000 lapic=00000000\n", console);
        Assert.Contains($"aps={topology.Cpus - 1:X8}\n", console);
        var aps = console.Split('\n').Where(l => l.StartsWith("ap apic=")).ToArray();
        Assert.Equal(topology.Cpus - 1, aps.Length);
        var ids = new List<int>();
        foreach (var line in aps)
        {
            // "ap apic=XXXXXXXX lapic=YYYYYYYY": CPUID's initial APIC ID and the LAPIC ID register agree.
            var apic = Convert.ToInt32(line[8..16], 16);
            var lapic = Convert.ToInt32(line[23..31], 16);
            Assert.Equal(apic, lapic);
            ids.Add(apic);
        }
        var expected = Enumerable.Range(1, topology.Cpus - 1).Select(topology.ApicIdOf).Order();
        Assert.Equal(expected, ids.Order());
    }

    [Fact]
    public void ApsNeverStartedDoNotKeepTheVmRunningAfterTheBspHalts()
    {
        // The BSP halts with interrupts off at once; the three APs sit in wait-for-SIPI: the VM has halted.
        var path = GuestImages.WriteTemp(MultibootKernels.Elf(0x100000, g =>
        {
            g.Print("bsp only\n");
            g.A.cli();
            g.A.hlt();
        }), ".elf");
        _files.Add(path);
        var console = new MemoryStream();
        var run = Task.Run(() => VmRunner.Run(new VmConfig("smp-idle", 32 << 20, path, console) { Topology = CpuTopology.Parse("4") }));
        Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "the VM did not end: the waiting APs kept it alive");
        Assert.Equal(VmExitCode.Halted, run.Result.Code);
        Assert.Equal("bsp only\n", Encoding.ASCII.GetString(console.ToArray()));
    }

    [Fact]
    public void FirmwareSeesTheTopologysCpuCount()
    {
        var path = GuestImages.WriteTemp(MultibootKernels.Elf(0x100000, g => MultibootKernels.ReportFwCfg(g, Passed)), ".elf");
        _files.Add(path);
        var console = new MemoryStream();
        var outcome = VmRunner.Run(new VmConfig("smp-fwcfg", 32 << 20, path, console)
        {
            Topology = CpuTopology.Parse("sockets=1,cores=3"),
            Devices = [new DeviceSpec.IsaDebugExit(0xF4, 4)],
        });
        Assert.Equal((Passed << 1) | 1, outcome.ExitStatus);
        Assert.Contains("cpus=00000003\n", Encoding.ASCII.GetString(console.ToArray())); // fw_cfg FW_CFG_NB_CPUS
    }
}
