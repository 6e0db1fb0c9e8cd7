using Actorvisor.Kernel.Boot;
using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Memory;
using Actorvisor.Kernel.Tests.GuestKit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// LOCKed read-modify-writes must be atomic across vCPUs: two <see cref="SoftwareCpu"/> instances on two
/// threads, one guest memory, each running a loop of locked updates to shared data; the final values must
/// account for every update (a lost update shows as a short count). Covers the host-CAS paths of each
/// width, 1- and 2-byte neighbours sharing one host word, misaligned operands, the page-crossing fallback,
/// XCHG's implicit lock (as a spinlock), CMPXCHG and CMPXCHG16B retry loops.
/// </summary>
public class LockAtomicityTests
{
    private const ulong Code = 0x10000, Data = 0x200000, Stack0 = 0x80000, Stack1 = 0x90000;
    private static readonly int Iterations = 40_000;

    /// <summary>Runs the same program on two CPUs at once (RBX = Data, ESI = the CPU's index) until both halt.</summary>
    private static GuestMemory RunOnTwoCpus(Action<Assembler> program, Action<GuestMemory>? init = null)
    {
        var memory = new GuestMemory(16 << 20);
        memory.Write(Code, GuestRunner.Assemble(64, Code, program));
        init?.Invoke(memory);
        var cpus = new SoftwareCpu[2];
        for (var k = 0; k < 2; k++)
        {
            var platform = new TestPlatform();
            cpus[k] = new SoftwareCpu(k, memory, platform);
            platform.Cpu = cpus[k];
            CpuSetup.EnterLongMode(cpus[k], Code, k == 0 ? Stack0 : Stack1);
            cpus[k].Gprs[Gpr.RBX] = Data;
            cpus[k].Gprs[Gpr.RSI] = (ulong)k;
        }
        var exits = new CpuExitReason[2];
        var threads = Enumerable.Range(0, 2).Select(k => new Thread(() => exits[k] = cpus[k].Run(50_000_000))).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)), "guest loop did not finish");
        Assert.All(exits, e => Assert.Equal(CpuExitReason.Halted, e));
        return memory;
    }

    private static void Loop(Assembler a, Action<Assembler> body)
    {
        var top = a.CreateLabel();
        a.mov(ecx, Iterations);
        a.Label(ref top);
        a.nop(); // the body may place its own label first
        body(a);
        a.dec(ecx);
        a.jnz(top);
        a.hlt();
    }

    [Fact]
    public void LockedAddsOfEveryWidthLoseNoUpdate()
    {
        var mem = RunOnTwoCpus(a => Loop(a, b =>
        {
            b.@lock.add(__qword_ptr[rbx], 1);
            b.@lock.add(__dword_ptr[rbx + 8], 1);
            b.@lock.inc(__word_ptr[rbx + 12]);   // shares an aligned host word with the next two
            b.@lock.inc(__byte_ptr[rbx + 14]);
            b.@lock.sub(__byte_ptr[rbx + 15], 1);
        }));
        Assert.Equal(2UL * (ulong)Iterations, mem.ReadUInt64(Data));
        Assert.Equal(2U * (uint)Iterations, mem.ReadUInt32(Data + 8));
        Assert.Equal((ushort)(2 * Iterations), mem.ReadUInt16(Data + 12));
        Assert.Equal((byte)(2 * Iterations), mem.ReadByte(Data + 14));
        Assert.Equal((byte)(0 - 2 * Iterations), mem.ReadByte(Data + 15));
    }

    [Fact]
    public void MisalignedAndPageCrossingLockedOpsLoseNoUpdate()
    {
        var mem = RunOnTwoCpus(a => Loop(a, b =>
        {
            b.@lock.add(__dword_ptr[rbx + 0x21], 1);     // inside one 8-byte word
            b.@lock.add(__qword_ptr[rbx + 0x45], 1);     // across an 8-byte boundary, inside a cache line
            b.@lock.add(__word_ptr[rbx + 0x7F], 1);      // across a cache line
            b.@lock.add(__dword_ptr[rbx + 0xFFE], 1);    // across a page: the fallback lock
            b.@lock.xadd(__word_ptr[rbx + 0x103], ax);   // odd 2-byte: the containing word
        }));
        Assert.Equal(2U * (uint)Iterations, mem.ReadUInt32(Data + 0x21));
        Assert.Equal(2UL * (ulong)Iterations, mem.ReadUInt64(Data + 0x45));
        Assert.Equal((ushort)(2 * Iterations), mem.ReadUInt16(Data + 0x7F));
        Assert.Equal(2U * (uint)Iterations, mem.ReadUInt32(Data + 0xFFE));
    }

    [Fact]
    public void XaddCountsEveryTicket()
    {
        // Each CPU takes tickets with LOCK XADD and sums them; together they must have taken 0..2N-1 once each.
        var mem = RunOnTwoCpus(a =>
        {
            a.xor(r8, r8);
            Loop(a, b =>
            {
                b.mov(eax, 1);
                b.@lock.xadd(__dword_ptr[rbx], eax);
                b.add(r8, rax);
            });
        }, null);
        Assert.Equal(2U * (uint)Iterations, mem.ReadUInt32(Data));
    }

    [Fact]
    public void XchgSpinlockProtectsAPlainCounter()
    {
        // XCHG with memory is locked without a prefix: a test-and-set lock around a non-atomic increment.
        var mem = RunOnTwoCpus(a => Loop(a, b =>
        {
            var spin = b.CreateLabel();
            b.Label(ref spin);
            b.mov(eax, 1);
            b.xchg(__dword_ptr[rbx], eax);
            b.test(eax, eax);
            b.jnz(spin);
            b.mov(edx, __dword_ptr[rbx + 64]);
            b.inc(edx);
            b.mov(__dword_ptr[rbx + 64], edx);
            b.mov(__dword_ptr[rbx], 0);
        }));
        Assert.Equal(2U * (uint)Iterations, mem.ReadUInt32(Data + 64));
        Assert.Equal(0U, mem.ReadUInt32(Data));
    }

    [Fact]
    public void CmpxchgRetryLoopsLoseNoUpdate()
    {
        var mem = RunOnTwoCpus(a => Loop(a, b =>
        {
            // 64-bit: CAS increment.
            var retry = b.CreateLabel();
            b.mov(rax, __qword_ptr[rbx]);
            b.Label(ref retry);
            b.lea(rdx, __[rax + 1]);
            b.@lock.cmpxchg(__qword_ptr[rbx], rdx);
            b.jnz(retry);
            // 8-bit neighbour of a 16-bit counter: both through the same host word.
            var retry8 = b.CreateLabel();
            b.mov(al, __byte_ptr[rbx + 9]);
            b.Label(ref retry8);
            b.lea(edx, __[rax + 1]);
            b.@lock.cmpxchg(__byte_ptr[rbx + 9], dl);
            b.jnz(retry8);
            b.@lock.inc(__word_ptr[rbx + 10]);
        }));
        Assert.Equal(2UL * (ulong)Iterations, mem.ReadUInt64(Data));
        Assert.Equal((byte)(2 * Iterations), mem.ReadByte(Data + 9));
        Assert.Equal((ushort)(2 * Iterations), mem.ReadUInt16(Data + 10));
    }

    [Fact]
    public void Cmpxchg16bIncrementsA128BitCounterAtomically()
    {
        // Low half starts near a carry so the high half moves too: a torn update would break the sum.
        var mem = RunOnTwoCpus(a => Loop(a, b =>
        {
            var retry = b.CreateLabel();
            b.mov(rax, __qword_ptr[rbx + 0x40]);
            b.mov(rdx, __qword_ptr[rbx + 0x48]);
            b.Label(ref retry);
            b.mov(r9, rdx);
            b.mov(r8, rax);
            b.add(r8, 0x1000);
            b.adc(r9, 0);
            b.push(rbx);
            b.push(rcx);
            b.mov(rcx, r9);
            b.mov(r10, rbx);
            b.mov(rbx, r8);
            b.@lock.cmpxchg16b(__xmmword_ptr[r10 + 0x40]);
            b.pop(rcx);
            b.pop(rbx);
            b.jnz(retry);
        }), m => m.WriteUInt64(Data + 0x40, ulong.MaxValue - 0x1000 * 1000));
        var lo = mem.ReadUInt64(Data + 0x40);
        var hi = mem.ReadUInt64(Data + 0x48);
        var total = ((UInt128)hi << 64) | lo;
        Assert.Equal((UInt128)(ulong.MaxValue - 0x1000 * 1000) + (UInt128)0x1000 * (UInt128)(2 * Iterations), total);
    }
}
