using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Actorvisor.Kernel.Memory;
using Iced.Intel;

namespace Actorvisor.Kernel.Cpu;

/// <summary>
/// The software x86-64 CPU: architectural state and the engine that runs it. The state lives in plain
/// fields (the hot path reads them directly); the engine is split by concern into partial files:
/// RunLoop (blocks, interrupts, kicks), DecodeCache, Dispatch, Operands, LazyFlags, LinearMemory, Paging,
/// and one static class per instruction group under Instructions/.
/// Not thread-safe: one thread runs it. <see cref="Kick"/> is the only member other threads may call.
/// </summary>
public sealed unsafe partial class SoftwareCpu
{
    public int Id { get; }
    public GuestMemory Memory { get; }
    public ICpuPlatform Platform { get; set; }
    public IInterruptSource Interrupts
    {
        get => _interrupts;
        set
        {
            _interrupts = value;
            _interruptsSignalChanges = value.SignalsChanges;
            NoteInterruptChange();
        }
    }
    private IInterruptSource _interrupts = NoInterrupts.Instance;
    public CpuModel Model { get; }

    // ---- architectural registers ----
    /// <summary>RAX..R15 in encoding order.</summary>
    public readonly ulong[] Gprs = new ulong[16];
    public ulong Rip;
    /// <summary>RFLAGS bits that are not the lazily computed arithmetic flags.</summary>
    internal ulong FlagsRest = RFlags.Fixed1;
    public readonly SegmentRegister[] Segs = new SegmentRegister[6];
    public SegmentRegister Ldtr, Tr;
    public DescriptorTable Gdtr, Idtr;
    public ulong Cr0 = Cpu.Cr0.PowerOn, Cr2, Cr3, Cr4, Cr8;
    public ulong EferValue;
    public readonly ulong[] Dr = new ulong[8];

    /// <summary>Current privilege level (CS.RPL after a load, 3 in virtual-8086 mode, 0 in real mode).</summary>
    public int Cpl { get; internal set; }
    /// <summary>Decoder bitness of the current code segment: 16, 32 or 64.</summary>
    public int Bitness { get; private set; } = 16;
    /// <summary>True in 64-bit mode proper (IA-32e with CS.L=1).</summary>
    public bool Is64 => Bitness == 64;
    public bool LongModeActive => (EferValue & Efer.LMA) != 0;
    public bool ProtectedMode => (Cr0 & Cpu.Cr0.PE) != 0;
    public bool V86Mode => (FlagsRest & RFlags.VM) != 0 && ProtectedMode;
    public bool PagingEnabled => (Cr0 & Cpu.Cr0.PG) != 0;

    /// <summary>Model-specific registers that are plain storage (see Msr.cs for the ones with behaviour).</summary>
    public readonly Dictionary<uint, ulong> MsrStore = new();

    /// <summary>Instructions retired since power-on; the deterministic clock.</summary>
    public long InstructionCount;

    /// <summary>In deterministic mode the TSC derives from the instruction count, not host time.</summary>
    public bool Deterministic { get; set; }

    /// <summary>The clock the TSC counts (at <see cref="CpuModel.TscHz"/>) instead of the host's; null: host time.</summary>
    public TimeProvider? TscClock { get; set; }

    // ---- event state ----
    /// <summary>Interrupts are blocked for one instruction after STI and MOV/POP SS.</summary>
    internal bool InterruptShadow;
    internal bool NmiPending;
    /// <summary>NMIs are blocked from NMI delivery until the next IRET.</summary>
    internal bool NmiBlocked;
    public bool Halted { get; internal set; }
    /// <summary>Set by other threads to make the run loop return <see cref="CpuExitReason.Kicked"/>.</summary>
    private volatile int _kick;

    /// <summary>Set by a handler that changed mode, paging, IF or code: the current block must stop.</summary>
    internal bool EndBlock;

    public SoftwareCpu(int id, GuestMemory memory, ICpuPlatform platform, CpuModel? model = null)
    {
        Id = id;
        Memory = memory;
        Platform = platform;
        Model = model ?? CpuModel.Default;
        InitTlb();
        Reset();
    }

    /// <summary>Power-on (RESET) state, SDM Vol. 3A, 10.1.1: real mode at F000:FFF0.</summary>
    public void Reset()
    {
        SetResetRegisters(Cpu.Cr0.PowerOn);
        NoteInterruptChange();
        MsrStore.Clear();
        ResetMsrs();
        UpdateMode();
        FlushTlb(includeGlobal: true);
        ClearDecodeCache();
        ResetFpu();
    }

    /// <summary>
    /// The registers RESET and INIT both set (SDM Vol. 3A, Table 10-1): GPRs, RFLAGS, RIP, segments, descriptor
    /// tables, control and debug registers, EFER, and no pending event; CR0 is the caller's (INIT keeps CD/NW).
    /// </summary>
    private void SetResetRegisters(ulong cr0)
    {
        Array.Clear(Gprs);
        Gprs[Gpr.RDX] = Model.ResetEdx;
        SetFlags(RFlags.Fixed1);
        Rip = 0xFFF0;
        for (var i = 0; i < 6; i++) Segs[i] = SegmentRegister.RealMode(0);
        Segs[Seg.CS] = new SegmentRegister
        {
            Selector = 0xF000, Base = 0xFFFF0000, Limit = 0xFFFF,
            Attributes = SegmentRegister.AttrP | SegmentRegister.AttrS | SegmentRegister.AttrCode | SegmentRegister.AttrReadable | SegmentRegister.AttrAccessed,
        };
        Ldtr = new SegmentRegister { Limit = 0xFFFF, Attributes = SegmentRegister.AttrP | 2 };
        Tr = new SegmentRegister { Limit = 0xFFFF, Attributes = SegmentRegister.AttrP | 3 };
        Gdtr = new DescriptorTable { Limit = 0xFFFF };
        Idtr = new DescriptorTable { Limit = 0xFFFF };
        Cr0 = cr0;
        Cr2 = Cr3 = Cr4 = Cr8 = 0;
        EferValue = 0;
        Array.Clear(Dr);
        Dr[6] = 0xFFFF0FF0; Dr[7] = 0x400;
        ResetPdptes();
        InterruptShadow = NmiPending = NmiBlocked = false;
        Halted = false;
        ShutdownReason = null;
    }

    /// <summary>CS as it was in real mode: after CR0.PE is set, the CPU stays at CPL 0 until CS is reloaded.</summary>
    private SegmentRegister _realModeCs;

    /// <summary>
    /// Recomputes bitness and CPL from CR0, EFER, CS and RFLAGS.VM; flushes what depends on them. In protected
    /// mode CPL is CS.RPL (every CS load puts the new CPL there), except while CS still holds the real-mode
    /// cache it had when PE was set: hardware keeps CPL 0 until the far jump, whatever that selector's low bits.
    /// </summary>
    public void UpdateMode()
    {
        ref var cs = ref Segs[Seg.CS];
        if (!ProtectedMode) { Bitness = cs.Big ? 32 : 16; Cpl = 0; _realModeCs = cs; }
        else if ((FlagsRest & RFlags.VM) != 0) { Bitness = 16; Cpl = 3; }
        else
        {
            Bitness = LongModeActive && cs.Long ? 64 : cs.Big ? 32 : 16;
            Cpl = SameCache(cs, _realModeCs) ? 0 : cs.Selector & 3;
        }
        SelectTlb();
        EndBlock = true;
    }

    private static bool SameCache(in SegmentRegister a, in SegmentRegister b) =>
        a.Selector == b.Selector && a.Base == b.Base && a.Limit == b.Limit && a.Attributes == b.Attributes;

    /// <summary>Asks the run loop to return at the next block boundary. Safe from any thread.</summary>
    public void Kick()
    {
        _kick = 1;
    }

    // ---- register access by Iced register ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref ulong GprRef(int index) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Gprs), index);

    /// <summary>Reads a general-purpose register of any width (AL..R15, AH..BH).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadGpr(Register r)
    {
        var info = RegTable.Info[(int)r];
        var v = GprRef(info.Index);
        return info.Size switch
        {
            8 => v,
            4 => (uint)v,
            2 => (ushort)v,
            _ => info.High ? (byte)(v >> 8) : (byte)v,
        };
    }

    /// <summary>Writes a general-purpose register with x86-64 semantics: 32-bit writes zero the upper half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteGpr(Register r, ulong value)
    {
        var info = RegTable.Info[(int)r];
        ref var slot = ref GprRef(info.Index);
        switch (info.Size)
        {
            case 8: slot = value; break;
            case 4: slot = (uint)value; break;
            case 2: slot = (slot & ~0xFFFFUL) | (ushort)value; break;
            default:
                if (info.High) slot = (slot & ~0xFF00UL) | ((ulong)(byte)value << 8);
                else slot = (slot & ~0xFFUL) | (byte)value;
                break;
        }
    }

    /// <summary>Mask for IP arithmetic in the current code size.</summary>
    // Inlined by request: the JIT left it a call in the interpreter's loop (0.7% of the vCPU's samples, compiling off).
    internal ulong IpMask
    {
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        get => Bitness == 64 ? ulong.MaxValue : Bitness == 32 ? 0xFFFF_FFFFUL : 0xFFFFUL;
    }

    public override string ToString() =>
        $"cpu{Id} rip={Rip:x} cs={Segs[Seg.CS].Selector:x} mode={Bitness} cpl={Cpl} rflags={GetFlags():x} " +
        $"rax={Gprs[0]:x} rcx={Gprs[1]:x} rdx={Gprs[2]:x} rbx={Gprs[3]:x} rsp={Gprs[4]:x} rbp={Gprs[5]:x} rsi={Gprs[6]:x} rdi={Gprs[7]:x} cr0={Cr0:x} cr3={Cr3:x} cr4={Cr4:x} efer={EferValue:x}";
}

/// <summary>Maps every Iced GPR to (slot, width, high-byte).</summary>
internal static class RegTable
{
    internal readonly record struct RegInfo(byte Index, byte Size, bool High);

    public static readonly RegInfo[] Info = Build();

    private static RegInfo[] Build()
    {
        var count = Enum.GetValues<Register>().Max(r => (int)r) + 1;
        var t = new RegInfo[count];
        foreach (var r in Enum.GetValues<Register>())
        {
            if (r is Register.AH or Register.CH or Register.DH or Register.BH)
                t[(int)r] = new RegInfo((byte)(r - Register.AH), 1, true);
            else if (r.IsGPR8()) t[(int)r] = new RegInfo((byte)(r.GetFullRegister() - Register.RAX), 1, false);
            else if (r.IsGPR16()) t[(int)r] = new RegInfo((byte)(r - Register.AX), 2, false);
            else if (r.IsGPR32()) t[(int)r] = new RegInfo((byte)(r - Register.EAX), 4, false);
            else if (r.IsGPR64()) t[(int)r] = new RegInfo((byte)(r - Register.RAX), 8, false);
        }
        return t;
    }
}
