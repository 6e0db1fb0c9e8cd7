using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>PUSHA/POPA, ENTER/LEAVE, PUSH imm sizes, LOOPcc/JrCXZ, near branches with operand-size prefixes.</summary>
public class StackAndBranchTests
{
    /// <summary>
    /// 64-bit PUSH/POP of registers (SDM Vol. 2B, PUSH and POP): PUSH RSP stores RSP as it was before the push;
    /// POP RSP leaves RSP holding the value read, not the incremented pointer; R8-R15 go through the same path.
    /// </summary>
    [Fact]
    public void PushAndPopOfRegistersIn64BitMode()
    {
        var h = new CpuHarness(StartMode.Long64);
        var sp0 = h[Gpr.RSP];
        h[Gpr.R15] = 0x1515_1515_1515_1515;
        h.Load(a =>
        {
            a.push(rsp);
            a.push(r15);
            a.pop(r12);
            a.pop(rbx);          // the old RSP
            a.mov(rax, 0x8F000);
            a.push(rax);
            a.pop(rsp);          // RSP = 0x8F000
        });
        h.Step(2);
        Assert.Equal(sp0 - 16, h[Gpr.RSP]);
        Assert.Equal(sp0, h.Memory.ReadUInt64(sp0 - 8));
        Assert.Equal(0x1515_1515_1515_1515UL, h.Memory.ReadUInt64(sp0 - 16));
        h.Step(2);
        Assert.Equal(0x1515_1515_1515_1515UL, h[Gpr.R12]);
        Assert.Equal(sp0, h[Gpr.RBX]);
        Assert.Equal(sp0, h[Gpr.RSP]);
        h.Step(3);
        Assert.Equal(0x8F000UL, h[Gpr.RSP]);
    }

    [Fact]
    public void PushadStoresRegistersWithTheOriginalEspAndPopadSkipsIt()
    {
        var h = new CpuHarness(StartMode.Protected32);
        for (var r = 0; r < 8; r++) if (r != Gpr.RSP) h[r] = 0x1111_1111u * (uint)(r + 1);
        var esp = h[Gpr.RSP];
        h.Load(a =>
        {
            a.pushad();
            a.mov(eax, 0); a.mov(ecx, 0); a.mov(edx, 0); a.mov(ebx, 0); a.mov(ebp, 0); a.mov(esi, 0); a.mov(edi, 0);
            a.mov(__dword_ptr[esp + 12], 0x5555_5555u); // the stored ESP slot: POPAD ignores it
            a.popad();
        });
        h.Step();
        Assert.Equal(esp - 32, h[Gpr.RSP]);
        for (var r = 0; r < 8; r++)
        {
            var slot = h.Memory.ReadUInt32(esp - 4 * (ulong)(r + 1));
            Assert.Equal(r == Gpr.RSP ? (uint)esp : 0x1111_1111u * (uint)(r + 1), slot);
        }
        h.Step(9);
        Assert.Equal(esp, h[Gpr.RSP]);
        for (var r = 0; r < 8; r++) if (r != Gpr.RSP) Assert.Equal(0x1111_1111UL * (uint)(r + 1), h[r]);
    }

    [Fact]
    public void PushaIn16BitModeUsesWordsAndKeepsUpperHalves()
    {
        var h = new CpuHarness(StartMode.Real);
        h[Gpr.RAX] = 0xAAAA_1234;
        h[Gpr.RSP] = 0x1000;
        h.Load(a => { a.pusha(); a.mov(ax, 0); a.popa(); });
        h.Step();
        Assert.Equal(0x1000UL - 16, h[Gpr.RSP]);
        Assert.Equal((ushort)0x1234, h.Memory.ReadUInt16(0x8_0000 + 0x1000 - 2));
        Assert.Equal((ushort)0x1000, h.Memory.ReadUInt16(0x8_0000 + 0x1000 - 10)); // original SP
        h.Step(2);
        Assert.Equal(0xAAAA_1234UL, h[Gpr.RAX]);
        Assert.Equal(0x1000UL, h[Gpr.RSP]);
    }

    [Fact]
    public void PushaIsUndefinedIn64BitMode()
    {
        var h = new CpuHarness(StartMode.Long64);
        h.LoadBytes(0x60);
        h.ExpectFault(Vectors.UD);
        h.LoadBytes(0x61);
        h.ExpectFault(Vectors.UD);
    }

    [Fact]
    public void PushadFaultLeavesEspUnchanged()
    {
        var h = new CpuHarness(StartMode.Protected32);
        // A 64 KiB stack segment and ESP = 0x10: the fifth store wraps to 0xFFFFFFFC, beyond the limit.
        var ss = h.Cpu.Segs[Seg.SS];
        ss.Limit = 0xFFFF;
        h.Cpu.Segs[Seg.SS] = ss;
        h[Gpr.RSP] = 0x10;
        h.Load(a => a.pushad());
        h.ExpectFault(Vectors.SS, 0);
        Assert.Equal(0x10UL, h[Gpr.RSP]);
    }

    /// <summary>
    /// ENTER with nesting level 3 (SDM Vol. 1, 6.5): push RBP, copy the two enclosing frame pointers from
    /// [RBP-8] and [RBP-16], push the new frame pointer, RBP := frame, RSP -= size. LEAVE undoes it.
    /// </summary>
    [Fact]
    public void EnterWithNestingCopiesEnclosingFramePointers()
    {
        var h = new CpuHarness(StartMode.Long64);
        const ulong oldBp = 0x80000;
        h.Memory.WriteUInt64(oldBp - 8, 0xAAAA);
        h.Memory.WriteUInt64(oldBp - 16, 0xBBBB);
        h[Gpr.RBP] = oldBp;
        var sp = h[Gpr.RSP];
        h.Load(a => { a.enter(0x20, 3); a.leave(); });
        h.Step();
        var frame = sp - 8;
        Assert.Equal(oldBp, h.Memory.ReadUInt64(sp - 8));
        Assert.Equal(0xAAAAUL, h.Memory.ReadUInt64(sp - 16));
        Assert.Equal(0xBBBBUL, h.Memory.ReadUInt64(sp - 24));
        Assert.Equal(frame, h.Memory.ReadUInt64(sp - 32));
        Assert.Equal(frame, h[Gpr.RBP]);
        Assert.Equal(sp - 32 - 0x20, h[Gpr.RSP]);
        h.Step();
        Assert.Equal(sp, h[Gpr.RSP]);
        Assert.Equal(oldBp, h[Gpr.RBP]);
    }

    [Fact]
    public void EnterLevelZeroAndOneIn32BitMode()
    {
        var h = new CpuHarness(StartMode.Protected32);
        h[Gpr.RBP] = 0x12345678;
        var sp = h[Gpr.RSP];
        h.Load(a => { a.enter(8, 0); a.enter(4, 1); });
        h.Step();
        Assert.Equal(sp - 4, h[Gpr.RBP]);
        Assert.Equal(sp - 4 - 8, h[Gpr.RSP]);
        Assert.Equal(0x12345678u, h.Memory.ReadUInt32(sp - 4));
        h.Step();
        var f1 = sp - 16;                             // second frame: after pushing EBP at sp-16
        Assert.Equal((uint)(sp - 4), h.Memory.ReadUInt32(sp - 16));
        Assert.Equal((uint)f1, h.Memory.ReadUInt32(sp - 20)); // level 1 pushes the new frame pointer
        Assert.Equal(f1, h[Gpr.RBP]);
        Assert.Equal(sp - 20 - 4, h[Gpr.RSP]);
    }

    [Fact]
    public void EnterWhoseFinalStackPointerIsUnwritableFaultsWithoutSideEffects()
    {
        var h = new CpuHarness(StartMode.Long64);
        h[Gpr.RSP] = 0x200_1000; // 2 MiB page at 0x2000000 is the last mapped... make the one below read-only
        h.Memory.WriteUInt64(global::Actorvisor.Kernel.Boot.CpuSetup.PdAddress + 0xF * 8, 0x1E0_0000 | 0x81); // 0x1E00000: present, read-only
        h.Cpu.FlushTlb(true);
        var bp = h[Gpr.RBP];
        h.Load(a => a.enter(0x2000, 0));
        var f = h.Fault();
        Assert.Equal(Vectors.PF, f.Vector);
        Assert.Equal(PfError.Present | PfError.Write, f.ErrorCode);
        Assert.Equal(0x200_1000UL, h[Gpr.RSP]);
        Assert.Equal(bp, h[Gpr.RBP]);
    }

    [Fact]
    public void PushImmediateSizesFollowOperandSize()
    {
        var h = new CpuHarness(StartMode.Long64);
        var sp = h[Gpr.RSP];
        h.Load(a => { a.push(-1); a.push(0x1234_5678); a.db(0x66, 0x68, 0x34, 0x12); a.db(0x66, 0x6A, 0x80); });
        h.Step(4);
        Assert.Equal(sp - 20, h[Gpr.RSP]);
        Assert.Equal(ulong.MaxValue, h.Memory.ReadUInt64(sp - 8));
        Assert.Equal(0x1234_5678UL, h.Memory.ReadUInt64(sp - 16));
        Assert.Equal((ushort)0x1234, h.Memory.ReadUInt16(sp - 18));
        Assert.Equal((ushort)0xFF80, h.Memory.ReadUInt16(sp - 20));

        var r = new CpuHarness(StartMode.Real);
        r[Gpr.RSP] = 0x100;
        r.Load(a => { a.push(-2); a.db(0x66, 0x6A, 0xFE); });
        r.Step(2);
        Assert.Equal(0x100UL - 6, r[Gpr.RSP]);
        Assert.Equal((ushort)0xFFFE, r.Memory.ReadUInt16(0x8_0000 + 0x100 - 2));
        Assert.Equal(0xFFFF_FFFEu, r.Memory.ReadUInt32(0x8_0000 + 0x100 - 6));
    }

    [Fact]
    public void LoopFamilyCountsWithTheAddressSizeRegister()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            var l1 = a.CreateLabel();
            a.mov(rcx, 0x1_0000_0003UL);
            a.xor(eax, eax);
            a.Label(ref l1);
            a.inc(eax);
            a.loop(l1);            // counts all of RCX: 2^32 + 3 iterations
            a.hlt();
        }, maxInstructions: 20);
        // 64-bit LOOP uses all of RCX, so it is still looping after the budget.
        Assert.Equal(CpuExitReason.InstructionLimit, r.Exit);

        var e = GuestRunner.Run(StartMode.Long64, a =>
        {
            var l = a.CreateLabel();
            a.mov(rcx, 0xFFFF_FFFF_0000_0003UL);
            a.xor(eax, eax);
            a.Label(ref l);
            a.inc(eax);
            a.db(0x67, 0xE2, 0xFB); // loop l with ECX (address-size prefix): back over itself and the 2-byte INC
            a.hlt();
        });
        Assert.Equal(CpuExitReason.Halted, e.Exit);
        Assert.Equal(3UL, e.Rax);
        Assert.Equal(0UL, e.Reg(Gpr.RCX)); // a 32-bit count write clears the upper half

        var w = GuestRunner.Run(StartMode.Real, a =>
        {
            var l = a.CreateLabel();
            a.mov(ecx, 0xABCD_0002u);
            a.xor(ax, ax);
            a.Label(ref l);
            a.inc(ax);
            a.loop(l);              // CX in 16-bit code
            a.hlt();
        });
        Assert.Equal(2UL, w.Rax & 0xFFFF);
        Assert.Equal(0xABCD_0000UL, w.Reg(Gpr.RCX)); // upper half of ECX untouched
    }

    [Fact]
    public void LoopeAndLoopneStopOnZeroFlag()
    {
        var r = GuestRunner.Run(StartMode.Protected32, a =>
        {
            var l1 = a.CreateLabel();
            var l2 = a.CreateLabel();
            a.mov(ecx, 10);
            a.mov(ebx, 0);
            a.Label(ref l1);
            a.inc(ebx);
            a.cmp(ebx, 4);
            a.loopne(l1);          // stops when EBX = 4 (ZF = 1)
            a.mov(esi, ecx);
            a.mov(ecx, 10);
            a.mov(edx, 0);
            a.Label(ref l2);
            a.inc(edx);
            a.cmp(edx, edx);       // ZF = 1 each time: LOOPE runs until ECX = 0
            a.loope(l2);
            a.hlt();
        });
        Assert.Equal(4UL, r.Reg(Gpr.RBX));
        Assert.Equal(6UL, r.Reg(Gpr.RSI));
        Assert.Equal(10UL, r.Reg(Gpr.RDX));
        Assert.Equal(0UL, r.Reg(Gpr.RCX));
    }

    [Fact]
    public void JrcxzFamilyTestsTheAddressSizeCount()
    {
        var r = GuestRunner.Run(StartMode.Long64, a =>
        {
            var t1 = a.CreateLabel();
            var t3 = a.CreateLabel();
            a.mov(rcx, 0x1_0000_0000UL);
            a.xor(eax, eax);
            a.jrcxz(t1);           // RCX != 0: not taken
            a.or(eax, 1);
            a.Label(ref t1);
            a.db(0x67, 0xE3, 0x03); // jecxz over the next 3 bytes: ECX == 0, taken (Iced's assembler lacks it in 64-bit)
            a.db(0x83, 0xC8, 0x02); // or eax, 2
            a.xor(ecx, ecx);
            a.jrcxz(t3);
            a.or(eax, 4);
            a.Label(ref t3);
            a.hlt();
        });
        Assert.Equal(1UL, r.Rax);
    }

    /// <summary>In 16-bit code, 66-prefixed near CALL/RET/JMP move 32-bit EIP values on the stack.</summary>
    [Fact]
    public void NearBranchesIn16BitCodeHonourOperandSizePrefix()
    {
        var r = GuestRunner.Run(StartMode.Real, a => a.db(
        [
            0xBC, 0x00, 0x02,                   //  0: mov sp, 0x200
            0x66, 0xE8, 0x08, 0x00, 0x00, 0x00, //  3: call sub32 (rel32: pushes a 4-byte EIP)
            0x89, 0xE3,                         //  9: mov bx, sp
            0x66, 0xE9, 0x04, 0x00, 0x00, 0x00, // 11: jmp end (rel32)
            0x89, 0xE7,                         // 17: sub32: mov di, sp
            0x66, 0xC3,                         // 19: retd (pops 4 bytes)
            0xF4,                               // 21: end: hlt
        ]));
        Assert.Equal(CpuExitReason.Halted, r.Exit);
        Assert.Equal(0x200UL - 4, r.Reg(Gpr.RDI) & 0xFFFF);
        Assert.Equal(0x200UL, r.Reg(Gpr.RBX) & 0xFFFF);
        Assert.Equal(0x9UL, r.Cpu.Memory.ReadUInt32(0x8_0000 + 0x200 - 4)); // the pushed return EIP
        Assert.Equal(22UL, r.Cpu.Rip);
    }

    [Fact]
    public void RetImmediateReleasesParameters()
    {
        var r = GuestRunner.Run(StartMode.Real, a =>
        {
            var sub = a.CreateLabel();
            a.mov(sp, 0x200);
            a.push(ax);             // one word parameter
            a.call(sub);
            a.mov(si, sp);
            a.hlt();
            a.Label(ref sub);
            a.mov(bp, sp);
            a.ret(2);
        });
        Assert.Equal(0x200UL - 4, r.Reg(Gpr.RBP) & 0xFFFF);
        Assert.Equal(0x200UL, r.Reg(Gpr.RSI) & 0xFFFF);
    }
}
