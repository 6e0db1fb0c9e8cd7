using Iced.Intel;

namespace Actorvisor.Kernel.Cpu.Instructions;

/// <summary>
/// String instructions (SDM Vol. 2, MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS, and REP/REPE/REPNE):
/// the source is seg:(E/R)SI with seg DS or an override, the destination ES:(E/R)DI; the address size
/// (Iced's MemorySegSI/ESI/RSI and MemoryESDI/ESEDI/ESRDI) picks the index and count registers; DF picks
/// the direction.
///
/// A REP instruction runs at most <see cref="ChunkIterations"/> iterations per execution; if work remains
/// it leaves RIP on itself so the run loop re-executes it after looking at interrupts and kicks. Registers
/// are updated per iteration, so a fault mid-way leaves RCX/RSI/RDI at the faulting iteration, as on
/// hardware, and the instruction restarts from there.
/// </summary>
internal static unsafe class Strings
{
    /// <summary>Iterations per execution of a REP string instruction before it yields to the run loop.</summary>
    public const int ChunkIterations = 4096;

    public static void Register(Dispatch.HandlerTable t)
    {
        // Registered by code: MOVSD and CMPSD share their mnemonics with SSE instructions.
        t.Set(Code.Movsb_m8_m8, &Movs);
        t.Set(Code.Movsw_m16_m16, &Movs);
        t.Set(Code.Movsd_m32_m32, &Movs);
        t.Set(Code.Movsq_m64_m64, &Movs);
        t.Set(Code.Cmpsb_m8_m8, &Cmps);
        t.Set(Code.Cmpsw_m16_m16, &Cmps);
        t.Set(Code.Cmpsd_m32_m32, &Cmps);
        t.Set(Code.Cmpsq_m64_m64, &Cmps);
        t.Set(Code.Scasb_AL_m8, &Scas);
        t.Set(Code.Scasw_AX_m16, &Scas);
        t.Set(Code.Scasd_EAX_m32, &Scas);
        t.Set(Code.Scasq_RAX_m64, &Scas);
        t.Set(Code.Lodsb_AL_m8, &Lods);
        t.Set(Code.Lodsw_AX_m16, &Lods);
        t.Set(Code.Lodsd_EAX_m32, &Lods);
        t.Set(Code.Lodsq_RAX_m64, &Lods);
        t.Set(Code.Stosb_m8_AL, &Stos);
        t.Set(Code.Stosw_m16_AX, &Stos);
        t.Set(Code.Stosd_m32_EAX, &Stos);
        t.Set(Code.Stosq_m64_RAX, &Stos);
        t.Set(Code.Insb_m8_DX, &Ins);
        t.Set(Code.Insw_m16_DX, &Ins);
        t.Set(Code.Insd_m32_DX, &Ins);
        t.Set(Code.Outsb_DX_m8, &Outs);
        t.Set(Code.Outsw_DX_m16, &Outs);
        t.Set(Code.Outsd_DX_m32, &Outs);
    }

    /// <summary>The registers and sizes one string instruction works with.</summary>
    private ref struct Ctx
    {
        public SoftwareCpu Cpu;
        /// <summary>Element size in bytes.</summary>
        public int Size;
        /// <summary>Address size in bytes (2, 4, 8): the width of SI, DI and the count.</summary>
        public int AddrSize;
        public ulong AddrMask;
        /// <summary>Signed step per element: ±Size by DF.</summary>
        public ulong Step;
        public int SrcSeg;
        public bool Rep;

        public readonly ulong Si => Cpu.Gprs[Gpr.RSI] & AddrMask;
        public readonly ulong Di => Cpu.Gprs[Gpr.RDI] & AddrMask;
        public readonly ulong Count => Cpu.Gprs[Gpr.RCX] & AddrMask;
        public readonly void AdvanceSi(ulong n = 1) => Set(Gpr.RSI, Cpu.Gprs[Gpr.RSI] + Step * n);
        public readonly void AdvanceDi(ulong n = 1) => Set(Gpr.RDI, Cpu.Gprs[Gpr.RDI] + Step * n);
        public readonly void DecrementCount(ulong n = 1) => Set(Gpr.RCX, Cpu.Gprs[Gpr.RCX] - n);
        public readonly bool Down => Step != (ulong)Size;

        /// <summary>A register write at the address size: 16-bit keeps the upper bits, 32-bit zero-extends.</summary>
        private readonly void Set(int reg, ulong v)
        {
            ref var g = ref Cpu.Gprs[reg];
            g = AddrSize switch
            {
                2 => (g & ~0xFFFFUL) | (v & 0xFFFF),
                4 => v & 0xFFFF_FFFF,
                _ => v,
            };
        }
    }

    private static int AddressSizeOf(OpKind k) => k switch
    {
        OpKind.MemorySegSI or OpKind.MemorySegDI or OpKind.MemoryESDI => 2,
        OpKind.MemorySegESI or OpKind.MemorySegEDI or OpKind.MemoryESEDI => 4,
        _ => 8,
    };

    private static Ctx Context(SoftwareCpu cpu, in Instruction i, int size, OpKind stringOperand)
    {
        var addr = AddressSizeOf(stringOperand);
        return new Ctx
        {
            Cpu = cpu,
            Size = size,
            AddrSize = addr,
            AddrMask = addr == 8 ? ulong.MaxValue : addr == 4 ? 0xFFFF_FFFFUL : 0xFFFFUL,
            Step = cpu.DF ? (ulong)(-size) : (ulong)size,
            SrcSeg = SoftwareCpu.SegIndex(i.MemorySegment),
            // F2 on a non-comparing string instruction repeats like F3 (the SDM reserves it; hardware repeats).
            Rep = i.HasRepPrefix || i.HasRepnePrefix,
        };
    }

    private static int ElementSize(in Instruction i) => i.MemorySize.GetSize();

    /// <summary>
    /// Runs the iterations of one execution: <paramref name="step"/> does one element and returns false
    /// to stop early (REPE/REPNE). Without REP it runs once; with REP it stops at a zero count, or after
    /// <see cref="ChunkIterations"/> with RIP left on the instruction so the run loop comes back.
    /// </summary>
    private static void Repeat<T>(ref Ctx c, ref T step) where T : struct, IStep
    {
        if (!c.Rep)
        {
            step.Do(ref c);
            return;
        }
        for (var n = 0; n < ChunkIterations; n++)
        {
            if (c.Count == 0) return;
            var more = step.Do(ref c);
            c.DecrementCount();
            if (!more || c.Count == 0) return;
        }
        c.Cpu.Rip = c.Cpu.CurrentIp;
    }

    private interface IStep
    {
        /// <summary>One element; false ends a REPE/REPNE loop.</summary>
        bool Do(ref Ctx c);
    }

    // ---- MOVS, STOS, LODS ----

    private struct MovsStep : IStep
    {
        public bool Do(ref Ctx c)
        {
            var v = c.Cpu.ReadMem(c.SrcSeg, c.Si, c.Size);
            c.Cpu.WriteMem(Seg.ES, c.Di, c.Size, v);
            c.AdvanceSi();
            c.AdvanceDi();
            return true;
        }
    }

    private static void Movs(SoftwareCpu cpu, in Instruction i)
    {
        var c = Context(cpu, in i, ElementSize(in i), i.Op0Kind);
        var s = new MovsStep();
        if (c.Rep) RepeatInBlocks(ref c, ref s, movs: true, 0);
        else s.Do(ref c);
    }

    private struct StosStep : IStep
    {
        public ulong Value;

        public bool Do(ref Ctx c)
        {
            c.Cpu.WriteMem(Seg.ES, c.Di, c.Size, Value);
            c.AdvanceDi();
            return true;
        }
    }

    private static void Stos(SoftwareCpu cpu, in Instruction i)
    {
        var size = ElementSize(in i);
        var c = Context(cpu, in i, size, i.Op0Kind);
        var s = new StosStep { Value = cpu.Gprs[Gpr.RAX] & SoftwareCpu.SizeMask(size) };
        if (c.Rep) RepeatInBlocks(ref c, ref s, movs: false, s.Value);
        else s.Do(ref c);
    }

    private struct LodsStep : IStep
    {
        public Iced.Intel.Register Acc;

        public bool Do(ref Ctx c)
        {
            var v = c.Cpu.ReadMem(c.SrcSeg, c.Si, c.Size);
            c.Cpu.WriteGpr(Acc, v);
            c.AdvanceSi();
            return true;
        }
    }

    private static void Lods(SoftwareCpu cpu, in Instruction i)
    {
        var c = Context(cpu, in i, ElementSize(in i), i.Op1Kind);
        var s = new LodsStep { Acc = i.Op0Register };
        Repeat(ref c, ref s);
    }

    // ---- the REP MOVS / REP STOS fast path ----

    /// <summary>
    /// REP MOVS/STOS as runs of elements that stay inside one source and one destination page: each run is
    /// translated and segment-checked once, then filled or copied through host pointers in bulk (an
    /// overlapping MOVS element by element in the architectural order, so it repeats a pattern exactly as
    /// on hardware). Elements
    /// that cross a page, touch MMIO or a page holding decoded code, or would wrap a 16/32-bit index go
    /// through <paramref name="step"/> one at a time. Faults happen at the first element of a run, with the
    /// registers recording everything before it.
    /// </summary>
    private static void RepeatInBlocks<T>(ref Ctx c, ref T step, bool movs, ulong value) where T : struct, IStep
    {
        var budget = (ulong)ChunkIterations;
        var fast = true;
        while (true)
        {
            var count = c.Count;
            if (count == 0) return;
            if (budget == 0)
            {
                c.Cpu.Rip = c.Cpu.CurrentIp;
                return;
            }
            var n = fast ? Block(ref c, movs, value, Math.Min(budget, count), out fast) : 0;
            if (n == 0)
            {
                step.Do(ref c);
                c.DecrementCount();
                n = 1;
            }
            budget -= n;
        }
    }

    /// <summary>
    /// Moves or stores up to <paramref name="limit"/> elements within one page run; 0 if the checked path
    /// must do the next one (and <paramref name="keepFast"/> false if it should do all that remain).
    /// </summary>
    private static ulong Block(ref Ctx c, bool movs, ulong value, ulong limit, out bool keepFast)
    {
        var size = c.Size;
        byte* src = null, dst;
        ulong n;
        keepFast = true;
        try
        {
            n = Prepare(ref c, movs, limit, ref src, out dst);
        }
        catch (CpuFault)
        {
            // Some element of the run faults: the checked path raises it at the exact element, in the
            // hardware's order (source first), for the rest of this execution.
            keepFast = false;
            return 0;
        }
        if (n == 0) return 0;

        var delta = c.Down ? -size : size;
        var count = (int)n;
        var bytes = count * size;
        // The run as a byte range (it is the same set of elements in either direction).
        var dstLow = c.Down ? dst - (bytes - size) : dst;
        if (!movs)
        {
            switch (size)
            {
                case 1: new Span<byte>(dstLow, count).Fill((byte)value); break;
                case 2: new Span<ushort>(dstLow, count).Fill((ushort)value); break;
                case 4: new Span<uint>(dstLow, count).Fill((uint)value); break;
                default: new Span<ulong>(dstLow, count).Fill(value); break;
            }
        }
        else
        {
            var srcLow = c.Down ? src - (bytes - size) : src;
            if (dstLow + bytes <= srcLow || srcLow + bytes <= dstLow) Buffer.MemoryCopy(srcLow, dstLow, bytes, bytes);
            else CopyElements(src, dst, delta, count, size);
        }
        if (movs) c.AdvanceSi(n);
        c.AdvanceDi(n);
        c.DecrementCount(n);
        return n;
    }

    /// <summary>Overlapping MOVS: element by element in the architectural order (a forward copy onto itself repeats a pattern).</summary>
    private static void CopyElements(byte* src, byte* dst, int delta, int count, int size)
    {
        switch (size)
        {
            case 1:
                for (var k = 0; k < count; k++, src += delta, dst += delta) *dst = *src;
                break;
            case 2:
                for (var k = 0; k < count; k++, src += delta, dst += delta) *(ushort*)dst = *(ushort*)src;
                break;
            case 4:
                for (var k = 0; k < count; k++, src += delta, dst += delta) *(uint*)dst = *(uint*)src;
                break;
            default:
                for (var k = 0; k < count; k++, src += delta, dst += delta) *(ulong*)dst = *(ulong*)src;
                break;
        }
    }

    /// <summary>
    /// Finds the run: how many elements (at most <paramref name="limit"/>, at least 2 to be worth it) stay in
    /// the current source and destination pages and pass their segment checks, and the host addresses of
    /// their first elements. Returns 0 when the next element needs the checked path.
    /// </summary>
    private static ulong Prepare(ref Ctx c, bool movs, ulong limit, ref byte* src, out byte* dst)
    {
        var cpu = c.Cpu;
        var size = c.Size;
        dst = null;
        var n = limit;
        ulong srcLa = 0;
        if (movs)
        {
            srcLa = cpu.SegmentedAddress(c.SrcSeg, c.Si, size, AccessKind.Read);
            n = Math.Min(n, RunLength(ref c, srcLa, c.Si));
            if (n == 0) return 0;
        }
        var dstLa = cpu.SegmentedAddress(Seg.ES, c.Di, size, AccessKind.Write);
        n = Math.Min(n, RunLength(ref c, dstLa, c.Di));
        if (n <= 1) return 0;
        // The last element's segment check covers the run: a segment's valid offsets are one contiguous range.
        var span = (n - 1) * c.Step;
        if (movs) cpu.SegmentedAddress(c.SrcSeg, (c.Si + span) & c.AddrMask, size, AccessKind.Read);
        cpu.SegmentedAddress(Seg.ES, (c.Di + span) & c.AddrMask, size, AccessKind.Write);
        if (movs && (src = HostPage(cpu, srcLa, write: false)) == null) return 0;
        dst = HostPage(cpu, dstLa, write: true);
        return dst == null ? 0 : n;
    }

    /// <summary>
    /// How many elements, starting at linear <paramref name="la"/> (index register value
    /// <paramref name="index"/>) and going in the string direction, lie wholly in la's page without the
    /// index wrapping at the address size.
    /// </summary>
    private static ulong RunLength(ref Ctx c, ulong la, ulong index)
    {
        var size = (ulong)c.Size;
        var inPage = la & 0xFFF;
        if (inPage + size > 0x1000) return 0;
        ulong pageRun, indexRun;
        if (c.Down)
        {
            pageRun = inPage / size + 1;
            indexRun = index / size + 1;
        }
        else
        {
            pageRun = (0x1000 - inPage) / size;
            indexRun = c.AddrMask - index < size - 1 ? 0 : (c.AddrMask - index - (size - 1)) / size + 1;
        }
        return Math.Min(pageRun, indexRun);
    }

    /// <summary>
    /// The host address of linear <paramref name="la"/> for a run inside its page: the TLB when it hits,
    /// else a page walk (which may raise #PF). Null for MMIO, and for writes to a page holding decoded code
    /// (left to the checked path, which invalidates the decoded blocks).
    /// </summary>
    private static byte* HostPage(SoftwareCpu cpu, ulong la, bool write)
    {
        var tag = la & ~0xFFFUL;
        ref var e = ref (write ? cpu.TlbW : cpu.TlbR)[(int)(la >> 12) & SoftwareCpu.TlbMask];
        ulong physPage;
        byte* host;
        if (e.Tag == tag && e.Host != 0)
        {
            physPage = e.PhysPage;
            host = (byte*)e.Host;
        }
        else
        {
            physPage = cpu.Translate(la, write ? AccessKind.Write : AccessKind.Read, cpu.Cpl == 3) & ~0xFFFUL;
            host = cpu.Memory.HostPointer(physPage);
            if (host == null || !cpu.Memory.IsRam(physPage, 0x1000)) return null;
        }
        if (write && cpu.Memory.IsCodePage(physPage >> 12)) return null;
        return host + (la & 0xFFF);
    }

    // ---- CMPS, SCAS ----

    /// <summary>REPE continues while equal (ZF=1), REPNE while not equal; plain REP is REPE for these.</summary>
    private static bool Continue(bool repne, ulong a, ulong b) => repne ? a != b : a == b;

    private struct CmpsStep : IStep
    {
        public bool Repne;

        public bool Do(ref Ctx c)
        {
            // CMPS subtracts the ES:DI element from the seg:SI element.
            var a = c.Cpu.ReadMem(c.SrcSeg, c.Si, c.Size);
            var b = c.Cpu.ReadMem(Seg.ES, c.Di, c.Size);
            c.AdvanceSi();
            c.AdvanceDi();
            c.Cpu.SetLazy(FlagOp.Sub, c.Size, a, b, a - b);
            return Continue(Repne, a, b);
        }
    }

    private static void Cmps(SoftwareCpu cpu, in Instruction i)
    {
        var c = Context(cpu, in i, ElementSize(in i), i.Op0Kind);
        var s = new CmpsStep { Repne = i.HasRepnePrefix };
        Repeat(ref c, ref s);
    }

    private struct ScasStep : IStep
    {
        public ulong Acc;
        public bool Repne;

        public bool Do(ref Ctx c)
        {
            var b = c.Cpu.ReadMem(Seg.ES, c.Di, c.Size);
            c.AdvanceDi();
            c.Cpu.SetLazy(FlagOp.Sub, c.Size, Acc, b, Acc - b);
            return Continue(Repne, Acc, b);
        }
    }

    private static void Scas(SoftwareCpu cpu, in Instruction i)
    {
        var size = ElementSize(in i);
        var c = Context(cpu, in i, size, i.Op1Kind);
        var s = new ScasStep { Acc = cpu.Gprs[Gpr.RAX] & SoftwareCpu.SizeMask(size), Repne = i.HasRepnePrefix };
        Repeat(ref c, ref s);
    }

    // ---- INS, OUTS ----

    private struct InsStep : IStep
    {
        public ushort Port;

        public bool Do(ref Ctx c)
        {
            var cpu = c.Cpu;
            cpu.CheckIoPermission(Port, c.Size);
            // Check the destination before the port read, so a fault does not lose the device's data.
            var la = cpu.SegmentedAddress(Seg.ES, c.Di, c.Size, AccessKind.Write);
            ProbeWrite(cpu, la, c.Size);
            var v = cpu.Platform.PortRead(cpu.Id, Port, c.Size);
            cpu.WriteLinear(la, c.Size, v);
            c.AdvanceDi();
            return true;
        }
    }

    /// <summary>Faults now if a write to [la, la+size) would (a #PF on either page), without writing.</summary>
    private static void ProbeWrite(SoftwareCpu cpu, ulong la, int size)
    {
        var user = cpu.Cpl == 3;
        cpu.Translate(la, AccessKind.Write, user);
        var last = la + (ulong)size - 1;
        if ((last >> 12) != (la >> 12)) cpu.Translate(last, AccessKind.Write, user);
    }

    private static void Ins(SoftwareCpu cpu, in Instruction i)
    {
        var c = Context(cpu, in i, ElementSize(in i), i.Op0Kind);
        var s = new InsStep { Port = (ushort)cpu.Gprs[Gpr.RDX] };
        Repeat(ref c, ref s);
        cpu.EndBlock = true;
    }

    private struct OutsStep : IStep
    {
        public ushort Port;

        public bool Do(ref Ctx c)
        {
            var cpu = c.Cpu;
            cpu.CheckIoPermission(Port, c.Size);
            var v = cpu.ReadMem(c.SrcSeg, c.Si, c.Size);
            cpu.Platform.PortWrite(cpu.Id, Port, c.Size, (uint)v);
            c.AdvanceSi();
            return true;
        }
    }

    private static void Outs(SoftwareCpu cpu, in Instruction i)
    {
        var c = Context(cpu, in i, ElementSize(in i), i.Op1Kind);
        var s = new OutsStep { Port = (ushort)cpu.Gprs[Gpr.RDX] };
        Repeat(ref c, ref s);
        // A port write may raise an interrupt or stop the machine: let the run loop look.
        cpu.EndBlock = true;
    }
}
