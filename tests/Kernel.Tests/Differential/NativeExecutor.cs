using System.Runtime.InteropServices;
using Iced.Intel;

namespace Actorvisor.Kernel.Tests.Differential;

/// <summary>
/// Runs one x86 instruction on the host CPU with chosen register, flag and memory inputs and captures the
/// results: the oracle for the differential tests.
///
/// Everything lives in one mapping at a fixed low address (<see cref="Base"/>): the runner code, the state
/// block and the scratch buffer. The emulated side uses the same guest-linear addresses (its page tables map
/// the first 4 GiB identically), so a memory operand's base register holds the same value on both sides and
/// every register can be compared exactly. The low address also makes a 32-bit compatibility-mode code
/// segment (selector 0x23 on Linux) usable for the instructions 64-bit mode lacks (BCD).
///
/// Not thread-safe across instances: there is one mapping per process; callers serialise through <see cref="Gate"/>.
/// </summary>
internal sealed unsafe partial class NativeExecutor
{
    public const ulong Base = 0x0100_0000;
    public const ulong MapSize = 0x40000;
    /// <summary>The 64-bit runner: prologue, the instruction under test at <see cref="TestAddr"/>, epilogue.</summary>
    public const ulong Code64 = Base;
    public const ulong TestAddr = Base + 0x400;
    private const ulong Epilogue64 = Base + 0x480;
    /// <summary>The compatibility-mode runner (64-bit part) and its 32-bit code.</summary>
    private const ulong CompatCode64 = Base + 0x800;
    public const ulong Test32Addr = Base + 0xC00;
    private const ulong CompatReturn64 = Base + 0xD00;
    private const ulong ProbeCode = Base + 0xE00;
    /// <summary>State block: inputs, outputs, saved host RSP, far pointer, probe scratch.</summary>
    private const ulong State = Base + 0x1000;
    private const ulong InRegs = State, InFlags = State + 0x80;
    private const ulong OutRegs = State + 0x100, OutFlags = State + 0x180;
    private const ulong SavedRsp = State + 0x188, FarPtr = State + 0x190, ZeroSigaction = State + 0x1A0;
        /// <summary>Scratch buffer for memory operands and string instructions.</summary>
    public const ulong BufferAddr = Base + 0x4000;
    public const int BufferSize = 0x4000;
    /// <summary>A stack below 4 GiB for compatibility mode (signals delivered there need room).</summary>
    private const ulong LowStackTop = Base + MapSize - 0x100;

    /// <summary>Linux x86-64 user selectors: 32-bit code, 64-bit code.</summary>
    private const ushort UserCs32 = 0x23, UserCs64 = 0x33;

    public static readonly object Gate = new();

    private static readonly Lazy<(NativeExecutor? Exec, string? Reason)> Shared = new(Create);

    /// <summary>The process-wide executor, or null with the reason the host cannot run one.</summary>
    public static NativeExecutor? Instance => Shared.Value.Exec;
    public static string? UnavailableReason => Shared.Value.Reason;

    /// <summary>Null when 32-bit compatibility-mode code cannot run here (checked in a forked child).</summary>
    public string? CompatUnavailableReason { get; }

    private NativeExecutor()
    {
        WriteRunner64();
        WriteCompatRunner();
        CompatUnavailableReason = ProbeCompat();
    }

    private static (NativeExecutor?, string?) Create()
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64 || !OperatingSystem.IsLinux())
            return (null, $"the host is {RuntimeInformation.OSDescription} on {RuntimeInformation.ProcessArchitecture}, not x86-64 Linux");
        const int MAP_FIXED_NOREPLACE = 0x100000;
        var p = Libc.mmap((nint)Base, (nuint)MapSize, Libc.PROT_READ | Libc.PROT_WRITE | Libc.PROT_EXEC,
            Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != (nint)Base)
        {
            if (p != -1) Libc.munmap(p, (nuint)MapSize);
            return (null, $"cannot map the fixed native test area at 0x{Base:x} (errno {Marshal.GetLastPInvokeError()})");
        }
        return (new NativeExecutor(), null);
    }

    // ---- running ----

    /// <summary>Register and flag state in and out of one execution; RSP (index 4) is not used.</summary>
    public struct Result
    {
        public ulong[] Regs;
        public ulong Flags;
    }

    /// <summary>
    /// Executes <paramref name="instruction"/> (64-bit encoded, for address <see cref="TestAddr"/>) with the
    /// given registers (RSP ignored) and RFLAGS (arithmetic bits and DF), with <paramref name="buffer"/> at
    /// <see cref="BufferAddr"/>; returns the registers and flags, and leaves the buffer's new contents in it.
    /// </summary>
    public Result Run64(ReadOnlySpan<byte> instruction, ulong[] regs, ulong flags, Span<byte> buffer)
    {
        CheckSafe(instruction, regs, buffer);
        return Run(instruction, TestAddr, Epilogue64, Code64, regs, flags, buffer);
    }

    /// <summary>
    /// Refuses to run what would fault on the host and so kill the test process (a test bug): an explicit
    /// memory operand outside the scratch buffer (BT-family register offsets included), a misaligned
    /// CMPXCHG16B, a DIV/IDIV that raises #DE. Only the first instruction of a sequence is checked.
    /// </summary>
    private static void CheckSafe(ReadOnlySpan<byte> instruction, ulong[] regs, ReadOnlySpan<byte> buffer)
    {
        var d = Decoder.Create(64, new ByteArrayCodeReader(instruction.ToArray()), TestAddr);
        d.Decode(out var i);
        if (i.Mnemonic is Mnemonic.Div or Mnemonic.Idiv && WouldDivideFault(in i, regs, buffer))
            throw new InvalidOperationException("this divide raises #DE: never run it natively");
        for (var n = 0; n < i.OpCount; n++)
        {
            if (i.GetOpKind(n) != OpKind.Memory) continue;
            if (i.MemoryBase == Register.RIP || i.MemorySegment is Register.FS or Register.GS)
                throw new InvalidOperationException("differential tests use [base+index+disp] operands only");
            var ea = (ulong)(long)i.MemoryDisplacement64;
            if (i.MemoryBase != Register.None) ea += regs[i.MemoryBase.GetFullRegister() - Register.RAX];
            if (i.MemoryIndex != Register.None) ea += regs[i.MemoryIndex.GetFullRegister() - Register.RAX] * (ulong)i.MemoryIndexScale;
            var size = (ulong)Math.Max(1, i.MemorySize.GetSize());
            if (i.Mnemonic is Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc && i.Op1Kind == OpKind.Register)
            {
                var bits = (int)size * 8;
                var off = i.Op1Register.GetSize() switch
                {
                    2 => (long)(short)regs[i.Op1Register.GetFullRegister() - Register.RAX],
                    4 => (int)regs[i.Op1Register.GetFullRegister() - Register.RAX],
                    _ => (long)regs[i.Op1Register.GetFullRegister() - Register.RAX],
                };
                ea += (ulong)((off >> System.Numerics.BitOperations.Log2((uint)bits)) * (long)size);
            }
            if (ea < BufferAddr || ea + size > BufferAddr + BufferSize)
                throw new InvalidOperationException($"memory operand at 0x{ea:x} is outside the native scratch buffer");
            if (i.Mnemonic == Mnemonic.Cmpxchg16b && (ea & 15) != 0)
                throw new InvalidOperationException("misaligned CMPXCHG16B raises #GP: never run it natively");
        }
    }

    /// <summary>SDM DIV/IDIV: #DE when the divisor is 0 or the quotient does not fit.</summary>
    private static bool WouldDivideFault(in Instruction i, ulong[] regs, ReadOnlySpan<byte> buffer)
    {
        int size;
        ulong divisor;
        if (i.Op0Kind == OpKind.Register)
        {
            var r = i.Op0Register;
            size = r.GetSize();
            var full = regs[r.GetFullRegister() - Register.RAX];
            divisor = r is Register.AH or Register.CH or Register.DH or Register.BH ? full >> 8 : full;
        }
        else
        {
            size = i.MemorySize.GetSize();
            var ea = (ulong)(long)i.MemoryDisplacement64 + (i.MemoryBase == Register.None ? 0 : regs[i.MemoryBase.GetFullRegister() - Register.RAX]);
            divisor = 0;
            for (var k = 0; k < size; k++) divisor |= (ulong)buffer[(int)(ea - BufferAddr) + k] << (8 * k);
        }
        var bits = size * 8;
        var mask = size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
        divisor &= mask;
        if (divisor == 0) return true;
        System.Numerics.BigInteger dividend = size == 1 ? regs[0] & 0xFFFF : ((System.Numerics.BigInteger)(regs[2] & mask) << bits) | (regs[0] & mask);
        if (i.Mnemonic == Mnemonic.Div) return dividend / divisor > mask;
        var one = System.Numerics.BigInteger.One;
        var sd = dividend >= one << (2 * bits - 1) ? dividend - (one << (2 * bits)) : dividend;
        var sv = divisor >= 1UL << (bits - 1) ? divisor - (one << bits) : divisor;
        var q = System.Numerics.BigInteger.Divide(sd, sv);
        return q > (one << (bits - 1)) - 1 || q < -(one << (bits - 1));
    }

    /// <summary>As <see cref="Run64"/> for a 32-bit encoded instruction run in compatibility mode (CS 0x23).</summary>
    public Result RunCompat32(ReadOnlySpan<byte> instruction, ulong[] regs, ulong flags)
    {
        if (CompatUnavailableReason != null) throw new InvalidOperationException(CompatUnavailableReason);
        // The 32-bit code jumps back with a direct far JMP (EA ptr16:32) to the 64-bit return path.
        Span<byte> farJmp = stackalloc byte[7];
        farJmp[0] = 0xEA;
        BitConverter.TryWriteBytes(farJmp[1..], (uint)CompatReturn64);
        BitConverter.TryWriteBytes(farJmp[5..], UserCs64);
        return Run(instruction, Test32Addr, 0, CompatCode64, regs, flags, default, farJmp);
    }

    private Result Run(ReadOnlySpan<byte> instruction, ulong at, ulong epilogue, ulong entry, ulong[] regs, ulong flags,
        Span<byte> buffer, ReadOnlySpan<byte> trailer = default)
    {
        // The code window holds 32 bytes: the instruction (or a short sequence) and the jump back.
        if (instruction.Length + Math.Max(5, trailer.Length) > 32) throw new ArgumentException("instruction too long");
        var code = new Span<byte>((void*)at, 32);
        instruction.CopyTo(code);
        var tail = code[instruction.Length..];
        if (trailer.IsEmpty)
        {
            // JMP rel32 to the epilogue.
            tail[0] = 0xE9;
            BitConverter.TryWriteBytes(tail[1..], (int)((long)epilogue - (long)(at + (ulong)instruction.Length + 5)));
        }
        else trailer.CopyTo(tail);

        var inRegs = new Span<ulong>((void*)InRegs, 16);
        for (var r = 0; r < 16; r++) inRegs[r] = regs[r];
        // Only the arithmetic flags and DF are under test; IF etc. are the host's business (popfq ignores them).
        *(ulong*)InFlags = (flags & (0x8D5UL | 0x400UL)) | 2;
        if (!buffer.IsEmpty) buffer.CopyTo(new Span<byte>((void*)BufferAddr, buffer.Length));

        ((delegate* unmanaged<void>)entry)();

        if (!buffer.IsEmpty) new Span<byte>((void*)BufferAddr, buffer.Length).CopyTo(buffer);
        var res = new Result { Regs = new ulong[16], Flags = *(ulong*)OutFlags };
        new Span<ulong>((void*)OutRegs, 16).CopyTo(res.Regs);
        res.Regs[4] = regs[4];
        return res;
    }

    // ---- code generation ----

    private static readonly Register[] Gpr64 =
    [
        Register.RAX, Register.RCX, Register.RDX, Register.RBX, Register.RSP, Register.RBP, Register.RSI, Register.RDI,
        Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15,
    ];

    private static readonly Register[] CalleeSaved = [Register.RBX, Register.RBP, Register.R12, Register.R13, Register.R14, Register.R15];

    /// <summary>An absolute [disp32] operand (no base, no RIP): the area is below 2 GiB.</summary>
    private static MemoryOperand Abs(ulong address) => new(Register.None, Register.None, 1, (long)address, 4);

    private static void Emit(ulong address, List<Instruction> list, int bitness = 64)
    {
        var block = new InstructionBlock(new ListWriter(address), list, address);
        if (!BlockEncoder.TryEncode(bitness, block, out var error, out _))
            throw new InvalidOperationException($"native runner assembly failed: {error}");
    }

    /// <summary>Saves callee-saved registers, loads flags and registers from the state block.</summary>
    private static void Prologue(List<Instruction> c)
    {
        foreach (var r in CalleeSaved) c.Add(Instruction.Create(Code.Push_r64, r));
        c.Add(Instruction.Create(Code.Mov_rm64_r64, Abs(SavedRsp), Register.RSP));
        c.Add(Instruction.Create(Code.Mov_r64_rm64, Register.RAX, Abs(InFlags)));
        c.Add(Instruction.Create(Code.Push_r64, Register.RAX));
        c.Add(Instruction.Create(Code.Popfq));
        for (var r = 15; r >= 0; r--)
            if (r != 4) c.Add(Instruction.Create(Code.Mov_r64_rm64, Gpr64[r], Abs(InRegs + (ulong)r * 8)));
    }

    /// <summary>Stores registers and flags, clears DF (the ABI needs it clear), restores and returns.</summary>
    private static void Epilogue(List<Instruction> c, bool restoreRsp)
    {
        for (var r = 0; r < 16; r++)
            if (r != 4) c.Add(Instruction.Create(Code.Mov_rm64_r64, Abs(OutRegs + (ulong)r * 8), Gpr64[r]));
        if (restoreRsp) c.Add(Instruction.Create(Code.Mov_r64_rm64, Register.RSP, Abs(SavedRsp)));
        c.Add(Instruction.Create(Code.Pushfq));
        c.Add(Instruction.Create(Code.Pop_r64, Register.RAX));
        c.Add(Instruction.Create(Code.Mov_rm64_r64, Abs(OutFlags), Register.RAX));
        c.Add(Instruction.Create(Code.Cld));
        c.Add(Instruction.Create(Code.Mov_r64_rm64, Register.RSP, Abs(SavedRsp)));
        for (var k = CalleeSaved.Length - 1; k >= 0; k--) c.Add(Instruction.Create(Code.Pop_r64, CalleeSaved[k]));
        c.Add(Instruction.Create(Code.Retnq));
    }

    private void WriteRunner64()
    {
        var pro = new List<Instruction>();
        Prologue(pro);
        pro.Add(Instruction.CreateBranch(Code.Jmp_rel32_64, TestAddr));
        Emit(Code64, pro);
        var epi = new List<Instruction>();
        Epilogue(epi, restoreRsp: false);
        Emit(Epilogue64, epi);
    }

    /// <summary>
    /// The compatibility-mode runner: switch to a stack below 4 GiB, load the inputs, far-jump through
    /// <see cref="FarPtr"/> to the 32-bit code (which needs no memory: DS/ES are null in a 64-bit process),
    /// which far-jumps back to <see cref="CompatReturn64"/>.
    /// </summary>
    private void WriteCompatRunner()
    {
        *(uint*)FarPtr = (uint)Test32Addr;
        *(ushort*)(FarPtr + 4) = UserCs32;
        var c = new List<Instruction>();
        foreach (var r in CalleeSaved) c.Add(Instruction.Create(Code.Push_r64, r));
        c.Add(Instruction.Create(Code.Mov_rm64_r64, Abs(SavedRsp), Register.RSP));
        c.Add(Instruction.Create(Code.Mov_r64_imm64, Register.RSP, LowStackTop));
        c.Add(Instruction.Create(Code.Mov_r64_rm64, Register.RAX, Abs(InFlags)));
        c.Add(Instruction.Create(Code.Push_r64, Register.RAX));
        c.Add(Instruction.Create(Code.Popfq));
        for (var r = 15; r >= 0; r--)
            if (r != 4) c.Add(Instruction.Create(Code.Mov_r64_rm64, Gpr64[r], Abs(InRegs + (ulong)r * 8)));
        c.Add(Instruction.Create(Code.Jmp_m1632, Abs(FarPtr)));
        Emit(CompatCode64, c);
        var back = new List<Instruction>();
        Epilogue(back, restoreRsp: false);
        Emit(CompatReturn64, back);
    }

    /// <summary>
    /// Checks in a forked child that a far jump to the 32-bit user code segment and back works (a kernel
    /// without IA-32 emulation faults it). The child runs only this machine code: it resets SIGSEGV/SIGBUS
    /// to their default action, arms a 5 s alarm, switches to 32-bit code and back, and exits with 42.
    /// </summary>
    private string? ProbeCompat()
    {
        const int SYS_rt_sigaction = 13, SYS_alarm = 37, SYS_fork = 57, SYS_exit_group = 231;
        new Span<byte>((void*)ZeroSigaction, 32).Clear();
        const ulong probe32 = ProbeCode + 0x100, probeBack = ProbeCode + 0x180;
        // fork(): the parent returns the child's pid; the child continues at ProbeCode + 0x60.
        var c = new List<Instruction>
        {
            Instruction.Create(Code.Mov_r32_imm32, Register.EAX, SYS_fork),
            Instruction.Create(Code.Syscall),
            Instruction.Create(Code.Test_rm64_r64, Register.RAX, Register.RAX),
            Instruction.CreateBranch(Code.Je_rel32_64, ProbeCode + 0x60),
            Instruction.Create(Code.Retnq),
        };
        Emit(ProbeCode, c);

        var ch = new List<Instruction>();
        foreach (var sig in new[] { 11, 7, 14 })
        {
            ch.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EDI, sig));
            ch.Add(Instruction.Create(Code.Mov_r64_imm64, Register.RSI, ZeroSigaction));
            ch.Add(Instruction.Create(Code.Xor_r32_rm32, Register.EDX, Register.EDX));
            ch.Add(Instruction.Create(Code.Mov_r32_imm32, Register.R10D, 8));
            ch.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EAX, SYS_rt_sigaction));
            ch.Add(Instruction.Create(Code.Syscall));
        }
        ch.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EDI, 5));
        ch.Add(Instruction.Create(Code.Mov_r32_imm32, Register.EAX, SYS_alarm));
        ch.Add(Instruction.Create(Code.Syscall));
        ch.Add(Instruction.Create(Code.Mov_r64_imm64, Register.RSP, LowStackTop));
        ch.Add(Instruction.Create(Code.Mov_r64_imm64, Register.RAX, probe32));
        ch.Add(Instruction.Create(Code.Mov_rm32_r32, Abs(FarPtr + 8), Register.EAX));
        ch.Add(Instruction.Create(Code.Mov_rm16_imm16, Abs(FarPtr + 12), UserCs32));
        ch.Add(Instruction.Create(Code.Jmp_m1632, Abs(FarPtr + 8)));
        Emit(ProbeCode + 0x60, ch);

        // 32-bit: a 32-bit-only instruction (AAA is #UD in 64-bit mode), then back to 64-bit.
        var c32 = new List<Instruction>
        {
            Instruction.Create(Code.Aaa),
            Instruction.CreateBranch(Code.Jmp_ptr1632, UserCs64, (uint)probeBack),
        };
        Emit(probe32, c32, 32);
        var cb = new List<Instruction>
        {
            Instruction.Create(Code.Mov_r32_imm32, Register.EDI, 42),
            Instruction.Create(Code.Mov_r32_imm32, Register.EAX, SYS_exit_group),
            Instruction.Create(Code.Syscall),
        };
        Emit(probeBack, cb);

        var pid = ((delegate* unmanaged<long>)ProbeCode)();
        if (pid <= 0) return $"compatibility-mode probe: fork failed ({pid})";
        int status, rc;
        const int EINTR = 4;
        do rc = Libc.waitpid((int)pid, &status, 0);
        while (rc == -1 && Marshal.GetLastPInvokeError() == EINTR);
        if (rc != pid) return $"compatibility-mode probe: waitpid failed (errno {Marshal.GetLastPInvokeError()})";
        // WIFEXITED && WEXITSTATUS == 42
        if ((status & 0x7F) == 0 && ((status >> 8) & 0xFF) == 42) return null;
        return $"32-bit compatibility-mode code does not run on this host (child wait status 0x{status:x})";
    }

    private sealed class ListWriter(ulong address) : CodeWriter
    {
        private ulong _p = address;
        public override void WriteByte(byte value) => *(byte*)_p++ = value;
    }

    private static partial class Libc
    {
        public const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
        public const int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20;

        [LibraryImport("libc", SetLastError = true)]
        public static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int munmap(nint addr, nuint length);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int waitpid(int pid, int* status, int options);
    }
}
