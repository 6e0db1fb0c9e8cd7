using Actorvisor.Kernel.Cpu;
using Actorvisor.Kernel.Tests.GuestKit;
using static Actorvisor.Kernel.Tests.Cpu.PageTableBuilder;
using static Iced.Intel.AssemblerRegisters;

namespace Actorvisor.Kernel.Tests.Cpu;

/// <summary>
/// Paging (SDM Vol. 3A, chapter 4) through instructions run in the CPU: page tables are built in guest
/// memory, paging is switched on with MOV CR3/CR4/CR0, and loads, stores and fetches are checked for the
/// data they reach and for the #PF error code and faulting address (what CR2 receives on delivery).
/// </summary>
public class PagingTests
{
    private const ulong Frame1 = 0x20_0000, Frame2 = 0x20_1000;
    private const ulong Marker1 = 0x1111_1111_1111_1111, Marker2 = 0x2222_2222_2222_2222;
    private const uint Low1 = 0x1111_1111, Low2 = 0x2222_2222;
    private const ulong La = 0x4000_0000; // a test linear address outside the identity-mapped code and stack

    private const uint Present = PfError.Present, W = PfError.Write, U = PfError.User, Rsvd = PfError.Reserved, Fetch = PfError.Fetch;

    private static (CpuHarness H, PageTableBuilder Pt) Setup(PagingKind kind, ulong cr4Bits = 0, bool nxe = false, bool wp = true, CpuModel? model = null)
    {
        var h = new CpuHarness(kind == PagingKind.FourLevel ? StartMode.Long64 : StartMode.Protected32, model);
        var pt = new PageTableBuilder(h.Memory, kind);
        // Code and stack identity-mapped, user-accessible so ring-3 tests can run there too.
        pt.IdentityMap(0x10000, 0x12000, P | RW | US);
        pt.IdentityMap(0x8E000, 0x90000, P | RW | US);
        // PAE loads its four PDPTEs with CR3 (SDM 4.4.1): give every one a directory before paging starts.
        if (kind == PagingKind.Pae)
            for (ulong q = 0; q < 4; q++) pt.EntryAddress(q << 30, 21);
        h.Memory.WriteUInt64(Frame1, Marker1);
        h.Memory.WriteUInt64(Frame2, Marker2);
        var cr4Value = cr4Bits | (kind == PagingKind.Bits32 ? 0 : Cr4.PAE);
        h.Load(a =>
        {
            if (kind == PagingKind.FourLevel)
            {
                a.mov(rax, (ulong)pt.Root);
                a.mov(cr3, rax);
                a.mov(rax, cr4Value);
                a.mov(cr4, rax);
            }
            else
            {
                a.mov(eax, (uint)pt.Root);
                a.mov(cr3, eax);
                a.mov(eax, (uint)cr4Value);
                a.mov(cr4, eax);
            }
            a.mov(ecx, MsrIndex.Efer);
            a.rdmsr();
            if (nxe) a.or(eax, (uint)Efer.NXE);
            else a.and(eax, ~(uint)Efer.NXE);
            a.wrmsr();
            if (kind == PagingKind.FourLevel) a.mov(rax, cr0); else a.mov(eax, cr0);
            a.or(eax, (uint)Cr0.PG);
            if (wp) a.or(eax, (uint)Cr0.WP);
            else a.and(eax, ~(uint)Cr0.WP);
            if (kind == PagingKind.FourLevel) a.mov(cr0, rax); else a.mov(cr0, eax);
            a.hlt();
        }, at: 0x11000);
        Assert.Equal(CpuExitReason.Halted, h.Cpu.Run(100));
        h.Cpu.Halted = false;
        Assert.True(h.Cpu.PagingEnabled);
        Assert.Equal(pt.Root, h.Cpu.Cr3);
        return (h, pt);
    }

    private static ulong Read(CpuHarness h, ulong la)
    {
        h[Gpr.RBX] = la;
        h.Load(a => { if (h.Cpu.Is64) a.mov(rax, __qword_ptr[rbx]); else a.mov(eax, __dword_ptr[ebx]); });
        h.Step();
        return h[Gpr.RAX];
    }

    private static CpuFault ReadFault(CpuHarness h, ulong la)
    {
        h[Gpr.RBX] = la;
        h.Load(a => { if (h.Cpu.Is64) a.mov(rax, __qword_ptr[rbx]); else a.mov(eax, __dword_ptr[ebx]); });
        return h.Fault();
    }

    private static void Write(CpuHarness h, ulong la, uint value)
    {
        h[Gpr.RBX] = la;
        h[Gpr.RAX] = value;
        h.Load(a => { if (h.Cpu.Is64) a.mov(__dword_ptr[rbx], eax); else a.mov(__dword_ptr[ebx], eax); });
        h.Step();
    }

    private static CpuFault WriteFault(CpuHarness h, ulong la)
    {
        h[Gpr.RBX] = la;
        h.Load(a => { if (h.Cpu.Is64) a.mov(__dword_ptr[rbx], eax); else a.mov(__dword_ptr[ebx], eax); });
        return h.Fault();
    }

    /// <summary>Jumps to <paramref name="la"/>; the fetch there must fault.</summary>
    private static CpuFault FetchFault(CpuHarness h, ulong la)
    {
        h[Gpr.RBX] = la;
        h.Load(a => { if (h.Cpu.Is64) a.jmp(rbx); else a.jmp(ebx); });
        h.Step();
        return h.Fault();
    }

    private static void AssertPf(CpuFault f, uint errorCode, ulong address)
    {
        Assert.Equal(CpuFault.Name(Vectors.PF), CpuFault.Name(f.Vector));
        Assert.Equal($"0x{errorCode:x}", $"0x{f.ErrorCode:x}");
        Assert.Equal(address, f.Address);
    }

    // ---- 32-bit paging ----

    [Fact]
    public void Bits32FourKilobytePagesTranslateAndNotPresentFaults()
    {
        var (h, pt) = Setup(PagingKind.Bits32);
        pt.Map(La, Frame1, P | RW);
        pt.Map(La + 0x1000, Frame2, P | RW);
        Assert.Equal(Low1, Read(h, La));
        Assert.Equal(Low2, Read(h, La + 0x1000));
        AssertPf(ReadFault(h, La + 0x2004), 0, La + 0x2004);            // PTE not present
        AssertPf(WriteFault(h, 0x8000_0010), W, 0x8000_0010);          // PDE not present
    }

    /// <summary>The PS bit of a PDE means a 4 MiB page only with CR4.PSE; without it the PDE points to a page table.</summary>
    [Fact]
    public void Bits32PsBitSelectsFourMegabytePagesOnlyWithPse()
    {
        const ulong big = 0x80_0000; // a 4 MiB frame that doubles as a page table
        foreach (var pse in new[] { true, false })
        {
            var (h, pt) = Setup(PagingKind.Bits32, cr4Bits: pse ? Cr4.PSE : 0);
            h.Memory.WriteUInt64(big + 0x123 * 0x1000, 0xB16B16);
            h.Memory.WriteUInt32(big + 0x123 * 4, (uint)(Frame2 | P | RW)); // the PTE read when PSE is off
            pt.WriteEntry(pt.EntryAddress(La, 22), big | P | RW | PS);
            var v = Read(h, La + 0x123_000);
            Assert.Equal(pse ? 0xB16B16u : Low2, v);
        }
    }

    [Fact]
    public void Bits32Pse36PutsPdeBits20To13AbovePhysicalBit32AndBit21IsReserved()
    {
        var (h, pt) = Setup(PagingKind.Bits32, cr4Bits: Cr4.PSE);
        // PDE bits 20:13 = 0x05 -> physical bits 39:32 = 5.
        pt.WriteEntry(pt.EntryAddress(La, 22), 0x40_0000 | (5UL << 13) | P | RW | PS);
        Assert.Equal(0x5_0040_0000UL + 0x1234, h.Cpu.Translate(La + 0x1234, AccessKind.Read, user: false));
        pt.WriteEntry(pt.EntryAddress(La, 22), 0x40_0000 | (1UL << 21) | P | RW | PS);
        h.Cpu.FlushTlb(true);
        AssertPf(ReadFault(h, La), Present | Rsvd, La);
    }

    [Fact]
    public void Bits32UserSupervisorAndReadWriteChecks()
    {
        var (h, pt) = Setup(PagingKind.Bits32);
        pt.Map(La, Frame1, P | RW);           // supervisor, writable
        pt.Map(La + 0x1000, Frame2, P | US);  // user, read-only
        Write(h, La, 0xAB);                    // supervisor write
        Assert.Equal(Low2, Read(h, La + 0x1000)); // supervisor reads user pages
        AssertPf(WriteFault(h, La + 0x1000), Present | W, La + 0x1000); // CR0.WP: supervisor honours R/W
        h.EnterRing3(userIdentityMap: false);
        AssertPf(ReadFault(h, La), Present | U, La);
        AssertPf(WriteFault(h, La + 0x1000), Present | W | U, La + 0x1000);
        Assert.Equal(Low2, Read(h, La + 0x1000));
        AssertPf(ReadFault(h, La + 0x5000), U, La + 0x5000);
    }

    [Fact]
    public void WriteProtectClearLetsSupervisorWriteReadOnlyPagesButNotUserCode()
    {
        var (h, pt) = Setup(PagingKind.Bits32, wp: false);
        var pte = pt.Map(La, Frame1, P | US);
        Write(h, La, 0x5A5A);
        Assert.Equal(0x5A5Au, h.Memory.ReadUInt32(Frame1));
        Assert.NotEqual(0UL, pt.ReadEntry(pte) & D);
        h.EnterRing3(userIdentityMap: false);
        AssertPf(WriteFault(h, La), Present | W | U, La);
    }

    [Fact]
    public void Bits32AccessedOnEveryLevelAndDirtyOnlyOnWrite()
    {
        var (h, pt) = Setup(PagingKind.Bits32);
        pt.Map(La, Frame1, P | RW);
        var walk = pt.Walk(La);
        Assert.Equal(2, walk.Count);
        Read(h, La);
        Assert.All(walk, e => Assert.NotEqual(0UL, pt.ReadEntry(e) & A));
        Assert.Equal(0UL, pt.ReadEntry(walk[1]) & D);
        Write(h, La + 8, 1); // the read left a read-only TLB entry: the write walks again and sets D
        Assert.NotEqual(0UL, pt.ReadEntry(walk[1]) & D);
        Assert.Equal(0UL, pt.ReadEntry(walk[0]) & D); // D is not set in a PDE that points to a table
    }

    [Fact]
    public void Bits32FetchFaultsCarryNoInstructionFetchBit()
    {
        // The I/D bit exists only where fetches can be refused (PAE or 4-level paging with NXE).
        var (h, _) = Setup(PagingKind.Bits32, nxe: true);
        AssertPf(FetchFault(h, La), 0, La);
    }

    // ---- PAE paging ----

    [Fact]
    public void PaeFourKilobyteAndTwoMegabytePages()
    {
        var (h, pt) = Setup(PagingKind.Pae);
        pt.Map(La, Frame1, P | RW);
        pt.Map(La + 0x20_0000, 0x60_0000, P | RW, 0x20_0000);
        h.Memory.WriteUInt64(0x60_0000 + 0x1_2340, 0xFACE);
        Assert.Equal(Low1, Read(h, La));
        Assert.Equal(0xFACEu, Read(h, La + 0x21_2340));
        var leaf = pt.Walk(La + 0x20_0000)[^1];
        Write(h, La + 0x20_0010, 3);
        Assert.Equal(A | D, pt.ReadEntry(leaf) & (A | D)); // dirty on the 2 MiB leaf
        AssertPf(ReadFault(h, 0xC000_0000), 0, 0xC000_0000); // PDE not present
    }

    [Fact]
    public void PaeExecuteDisableNeedsNxeAndOtherwiseIsReserved()
    {
        var (h, pt) = Setup(PagingKind.Pae, nxe: true);
        pt.Map(La, Frame1, P | RW | XD);
        Assert.Equal(Low1, Read(h, La)); // readable
        AssertPf(FetchFault(h, La), Present | Fetch, La);

        var (h2, pt2) = Setup(PagingKind.Pae, nxe: false);
        pt2.Map(La, Frame1, P | RW | XD);
        AssertPf(ReadFault(h2, La), Present | Rsvd, La);
    }

    [Theory]
    [InlineData(1UL << 40)]  // beyond MAXPHYADDR (40)
    [InlineData(1UL << 52)]  // PAE: bits 62:M are reserved, not ignored
    [InlineData(1UL << 62)]
    public void PaeReservedHighBitsFault(ulong bit)
    {
        var (h, pt) = Setup(PagingKind.Pae);
        pt.Map(La, Frame1 | bit, P | RW);
        AssertPf(ReadFault(h, La), Present | Rsvd, La);
    }

    [Fact]
    public void PaeTwoMegabytePageBits20To13AreReserved()
    {
        var (h, pt) = Setup(PagingKind.Pae);
        pt.Map(La, 0x60_0000 | (1UL << 13), P | RW, 0x20_0000);
        AssertPf(ReadFault(h, La), Present | Rsvd, La);
    }

    /// <summary>
    /// PAE keeps its four PDPTEs in registers loaded by MOV CR3 (SDM 4.4.1): a reserved bit there is #GP at
    /// the load, and a PDPTE changed in memory takes effect only at the next load.
    /// </summary>
    [Fact]
    public void PaePdptesAreLoadedWithCr3()
    {
        var (h, pt) = Setup(PagingKind.Pae);
        pt.Map(La, Frame1, P | RW);
        var pdpteAddr = pt.Walk(La)[0];
        var pdpte = pt.ReadEntry(pdpteAddr);
        // Point PDPTE 1 at an empty directory: the PDPTE register still holds the old one.
        pt.WriteEntry(pdpteAddr, 0x70_0000 | P);
        h.Memory.GetSpan(0x70_0000, 0x1000).Clear();
        h.Cpu.FlushTlb(true);
        Assert.Equal(Low1, Read(h, La));
        // Reloading CR3 picks the new PDPTE up.
        h.Load(a => { a.mov(eax, cr3); a.mov(cr3, eax); });
        h.Step(2);
        AssertPf(ReadFault(h, La), 0, La);
        // A PDPTE that is not present faults with P = 0.
        pt.WriteEntry(pdpteAddr, 0);
        h.Load(a => { a.mov(eax, cr3); a.mov(cr3, eax); });
        h.Step(2);
        AssertPf(ReadFault(h, La + 0x123), 0, La + 0x123);
        // A reserved PDPTE bit makes the load itself fail.
        pt.WriteEntry(pdpteAddr, pdpte | 2);
        h.Load(a => { a.mov(eax, cr3); a.mov(cr3, eax); });
        h.Step();
        h.ExpectFault(Vectors.GP, 0);
    }

    // ---- 4-level paging ----

    [Fact]
    public void FourLevelMapsFourKilobyteTwoMegabyteAndOneGigabytePages()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        pt.Map(La, Frame1, P | RW);
        pt.Map(0x80_0000_0000, 0x60_0000, P | RW, 0x20_0000);
        pt.Map(0x1_0000_0000_0000 >> 8, 0, P | RW, 0x4000_0000); // 1 GiB page at 0x100_0000_0000 -> physical 0
        h.Memory.WriteUInt64(0x60_0000 + 0x1_0008, 0x2020);
        h.Memory.WriteUInt64(0x3_0010, 0x3030);
        Assert.Equal(Marker1, Read(h, La));
        Assert.Equal(0x2020UL, Read(h, 0x80_0001_0008));
        Assert.Equal(0x3030UL, Read(h, 0x100_0003_0010));
        // Upper half of the address space: PML4 index 511.
        pt.Map(0xFFFF_FFFF_8000_0000, Frame2, P | RW);
        Assert.Equal(Marker2, Read(h, 0xFFFF_FFFF_8000_0000));
    }

    [Fact]
    public void FourLevelNonCanonicalAddressIsGpNotPf()
    {
        var (h, _) = Setup(PagingKind.FourLevel);
        h[Gpr.RBX] = 0x0000_8000_0000_0000;
        h.Load(a => a.mov(rax, __qword_ptr[rbx]));
        h.ExpectFault(Vectors.GP, 0);
    }

    /// <summary>
    /// A non-canonical address in 64-bit mode faults by the segment the operand uses (SDM 3A 6.15, #SS and #GP): an
    /// RBP or RSP base means SS (#SS), any other base DS (#GP), and an FS or GS base that carries the address out of
    /// the canonical range is a #GP as well.
    /// </summary>
    [Theory]
    [InlineData("rbp", Vectors.SS)]
    [InlineData("rsp", Vectors.SS)]
    [InlineData("rbx", Vectors.GP)]
    [InlineData("fs", Vectors.GP)]
    [InlineData("ss-prefix-rbx", Vectors.SS)]
    public void FourLevelNonCanonicalAddressFaultsBySegment(string form, int vector)
    {
        var (h, _) = Setup(PagingKind.FourLevel);
        h[Gpr.RBX] = 0x0000_8000_0000_0000;
        h[Gpr.RBP] = 0x0000_8000_0000_0000;
        h[Gpr.RSP] = 0x0000_8000_0000_0000;
        h[Gpr.RCX] = 0x0000_7FFF_FFFF_F000;
        h.Cpu.Segs[Seg.FS].Base = 0x1000;
        h.Load(a =>
        {
            switch (form)
            {
                case "rbp": a.mov(rax, __qword_ptr[rbp]); break;
                case "rsp": a.mov(rax, __qword_ptr[rsp]); break;
                case "rbx": a.mov(rax, __qword_ptr[rbx]); break;
                case "fs": a.mov(rax, __qword_ptr.fs[rcx]); break;
                default: a.mov(rax, __qword_ptr.ss[rbx]); break;
            }
        });
        h.ExpectFault(vector, 0);
    }

    [Fact]
    public void FourLevelReservedBits()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        // 51:M in a PTE.
        pt.Map(La, Frame1 | (1UL << 45), P | RW);
        AssertPf(ReadFault(h, La), Present | Rsvd, La);
        // 62:52 are ignored in 4-level paging.
        pt.Map(La + 0x1000, Frame2 | (0x7FFUL << 52), P | RW);
        Assert.Equal(Marker2, Read(h, La + 0x1000));
        // PS in a PML4E.
        var pml4e = pt.Walk(0x7F00_0000_0000)[0];
        pt.Map(0x7F00_0000_0000, Frame1, P | RW);
        pt.WriteEntry(pml4e, pt.ReadEntry(pml4e) | PS);
        AssertPf(ReadFault(h, 0x7F00_0000_0000), Present | Rsvd, 0x7F00_0000_0000);
        // Bits 29:13 of a 1 GiB page and 20:13 of a 2 MiB page.
        pt.Map(0x40_0000_0000, 0x4000_0000 | (1UL << 20), P | RW, 0x4000_0000);
        AssertPf(ReadFault(h, 0x40_0000_0000), Present | Rsvd, 0x40_0000_0000);
        pt.Map(0x41_0000_0000, 0x20_0000 | (1UL << 13), P | RW, 0x20_0000);
        AssertPf(ReadFault(h, 0x41_0000_0000), Present | Rsvd, 0x41_0000_0000);
    }

    [Fact]
    public void OneGigabytePagesAreReservedWhenTheModelLacksThem()
    {
        var model = CpuModel.Default with { Ext1Edx = CpuModel.Default.Ext1Edx & ~CpuidBits.Page1G };
        var (h, pt) = Setup(PagingKind.FourLevel, model: model);
        pt.Map(0x40_0000_0000, 0, P | RW, 0x4000_0000);
        AssertPf(ReadFault(h, 0x40_0000_0000), Present | Rsvd, 0x40_0000_0000);
    }

    [Fact]
    public void FourLevelPermissionsCombineAcrossLevels()
    {
        var (h, pt) = Setup(PagingKind.FourLevel, nxe: true);
        pt.Map(La, Frame1, P | RW | US);
        pt.Map(La + 0x1000, Frame2, P | RW | US);
        // The PDE of La's 2 MiB region is read-only, user: the leaf's RW does not override it.
        var pde = pt.Walk(La)[2];
        pt.WriteEntry(pde, pt.ReadEntry(pde) & ~RW);
        // A supervisor-only PML4E for another region makes user accesses there fail.
        pt.Map(0x7F80_0000_0000, Frame1, P | RW | US);
        var pml4e = pt.Walk(0x7F80_0000_0000)[0];
        pt.WriteEntry(pml4e, pt.ReadEntry(pml4e) & ~US);
        // XD in the PDPTE applies to everything below it.
        pt.Map(0x7F00_0000_0000, Frame1, P | RW | US);
        var pdpte = pt.Walk(0x7F00_0000_0000)[1];
        pt.WriteEntry(pdpte, pt.ReadEntry(pdpte) | XD);

        AssertPf(WriteFault(h, La), Present | W, La);
        Assert.Equal(Marker1, Read(h, 0x7F80_0000_0000));
        Assert.Equal(Marker1, Read(h, 0x7F00_0000_0000));
        AssertPf(FetchFault(h, 0x7F00_0000_0000), Present | Fetch, 0x7F00_0000_0000);
        h.EnterRing3(userIdentityMap: false);
        AssertPf(ReadFault(h, 0x7F80_0000_0000), Present | U, 0x7F80_0000_0000);
        AssertPf(WriteFault(h, La + 0x1000), Present | W | U, La + 0x1000);
        Assert.Equal(Marker2, Read(h, La + 0x1000));
        AssertPf(FetchFault(h, 0x7F00_0000_0000), Present | Fetch | U, 0x7F00_0000_0000);
        AssertPf(FetchFault(h, 0x7E00_0000_0000), Fetch | U, 0x7E00_0000_0000);
    }

    [Fact]
    public void FourLevelAccessedOnAllLevelsDirtyOnlyOnTheLeafAndOnlyOnWrite()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        const ulong lb = 0x80_0000_0000; // PML4 slot 1: no entry shared with the code's translation
        pt.Map(lb, Frame1, P | RW);
        var walk = pt.Walk(lb);
        Assert.Equal(4, walk.Count);
        Assert.All(walk, e => Assert.Equal(0UL, pt.ReadEntry(e) & A));
        Read(h, lb);
        Assert.All(walk, e => Assert.NotEqual(0UL, pt.ReadEntry(e) & A));
        Assert.All(walk, e => Assert.Equal(0UL, pt.ReadEntry(e) & D));
        Write(h, lb, 9);
        Assert.NotEqual(0UL, pt.ReadEntry(walk[3]) & D);
        Assert.All(walk.Take(3), e => Assert.Equal(0UL, pt.ReadEntry(e) & D));
    }

    [Fact]
    public void FaultingWalkSetsNoDirtyBit()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        var pte = pt.Map(La, Frame1, P | US);
        WriteFault(h, La);
        Assert.Equal(0UL, pt.ReadEntry(pte) & D);
    }

    // ---- TLB ----

    /// <summary>
    /// SDM 4.10.4.3: software must invalidate after changing a PTE; until then the old translation may be
    /// used. Here it is: the TLB keeps it until INVLPG or a CR3 write.
    /// </summary>
    [Theory]
    [InlineData(PagingKind.Bits32)]
    [InlineData(PagingKind.Pae)]
    [InlineData(PagingKind.FourLevel)]
    public void ChangedPteIsSeenOnlyAfterInvlpgOrCr3Write(PagingKind kind)
    {
        var (h, pt) = Setup(kind);
        var pte = pt.Map(La, Frame1, P | RW);
        var m1 = kind == PagingKind.FourLevel ? Marker1 : Low1;
        var m2 = kind == PagingKind.FourLevel ? Marker2 : Low2;
        Assert.Equal(m1, Read(h, La));
        pt.WriteEntry(pte, Frame2 | P | RW);
        Assert.Equal(m1, Read(h, La)); // stale, as the architecture allows
        h[Gpr.RBX] = La;
        h.Load(a => { if (h.Cpu.Is64) a.invlpg(__[rbx]); else a.invlpg(__[ebx]); });
        h.Step();
        Assert.Equal(m2, Read(h, La));

        pt.WriteEntry(pte, Frame1 | P | RW);
        Assert.Equal(m2, Read(h, La));
        h.Load(a => { if (h.Cpu.Is64) { a.mov(rax, cr3); a.mov(cr3, rax); } else { a.mov(eax, cr3); a.mov(cr3, eax); } });
        h.Step(2);
        Assert.Equal(m1, Read(h, La));
    }

    [Fact]
    public void GlobalPagesSurviveCr3WritesButNotAPgeToggle()
    {
        var (h, pt) = Setup(PagingKind.FourLevel, cr4Bits: Cr4.PGE);
        var pte = pt.Map(La, Frame1, P | RW | G);
        Assert.Equal(Marker1, Read(h, La));
        pt.WriteEntry(pte, Frame2 | P | RW | G);
        h.Load(a => { a.mov(rax, cr3); a.mov(cr3, rax); });
        h.Step(2);
        Assert.Equal(Marker1, Read(h, La)); // global: kept across the CR3 write
        h.Load(a => { a.mov(rax, cr4); a.and(eax, ~(uint)Cr4.PGE); a.mov(cr4, rax); a.or(eax, (uint)Cr4.PGE); a.mov(cr4, rax); });
        h.Step(5);
        Assert.Equal(Marker2, Read(h, La));
        // INVLPG drops a global translation too.
        pt.WriteEntry(pte, Frame1 | P | RW | G);
        h[Gpr.RBX] = La;
        h.Load(a => a.invlpg(__[rbx]));
        h.Step();
        Assert.Equal(Marker1, Read(h, La));
    }

    /// <summary>
    /// A flush clears only the TLB indices filled since the last one, up to a bound, and everything past it: both
    /// ways every translation that is not global must be walked again, and a global one kept until PGE toggles.
    /// </summary>
    [Theory]
    [InlineData(8)]
    [InlineData(300)]
    public void FlushesDropEveryNonGlobalTranslationHoweverManyPagesWereTouched(int pages)
    {
        var (h, pt) = Setup(PagingKind.FourLevel, cr4Bits: Cr4.PGE);
        const ulong globalLa = La - 0x10_0000;
        var ptes = new ulong[pages];
        for (var k = 0; k < pages; k++) ptes[k] = pt.Map(La + (ulong)k * 0x1000, Frame1, P | RW);
        var globalPte = pt.Map(globalLa, Frame1, P | RW | G);
        Assert.Equal(Marker1, Read(h, globalLa));
        for (var k = 0; k < pages; k++) Assert.Equal(Marker1, Read(h, La + (ulong)k * 0x1000));
        foreach (var pte in ptes) pt.WriteEntry(pte, Frame2 | P | RW);
        pt.WriteEntry(globalPte, Frame2 | P | RW | G);

        for (var round = 0; round < 2; round++)
        {
            h.Load(a => { a.mov(rax, cr3); a.mov(cr3, rax); });
            h.Step(2);
            for (var k = 0; k < pages; k++) Assert.Equal(Marker2, Read(h, La + (ulong)k * 0x1000));
            Assert.Equal(Marker1, Read(h, globalLa)); // global: kept across CR3 writes
        }
        h.Load(a => { a.mov(rax, cr4); a.and(eax, ~(uint)Cr4.PGE); a.mov(cr4, rax); a.or(eax, (uint)Cr4.PGE); a.mov(cr4, rax); });
        h.Step(5);
        Assert.Equal(Marker2, Read(h, globalLa));
    }

    [Fact]
    public void GlobalBitIsIgnoredWithoutPge()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        var pte = pt.Map(La, Frame1, P | RW | G);
        Assert.Equal(Marker1, Read(h, La));
        pt.WriteEntry(pte, Frame2 | P | RW | G);
        h.Load(a => { a.mov(rax, cr3); a.mov(cr3, rax); });
        h.Step(2);
        Assert.Equal(Marker2, Read(h, La));
    }

    /// <summary>INVLPG of any address in a large page drops all of it, though the TLB holds it in 4 KiB pieces.</summary>
    [Fact]
    public void InvlpgOfOneAddressDropsTheWholeLargePage()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        var pde = pt.Map(La, 0x60_0000, P | RW, 0x20_0000);
        h.Memory.WriteUInt64(0x60_0000 + 0x5_0000, 0x5);
        h.Memory.WriteUInt64(0x80_0000 + 0x5_0000, 0x8);
        h.Memory.WriteUInt64(0x60_0000 + 0x1F_F000, 0x6);
        h.Memory.WriteUInt64(0x80_0000 + 0x1F_F000, 0x9);
        Assert.Equal(0x5UL, Read(h, La + 0x5_0000));
        Assert.Equal(0x6UL, Read(h, La + 0x1F_F000));
        pt.WriteEntry(pde, 0x80_0000 | P | RW | PS);
        h[Gpr.RBX] = La + 0x1000;
        h.Load(a => a.invlpg(__[rbx]));
        h.Step();
        Assert.Equal(0x8UL, Read(h, La + 0x5_0000));
        Assert.Equal(0x9UL, Read(h, La + 0x1F_F000));
    }

    [Fact]
    public void ClearingWriteProtectFlushesStaleWritePermissions()
    {
        var (h, pt) = Setup(PagingKind.FourLevel, wp: false);
        pt.Map(La, Frame1, P); // read-only: writable by the supervisor while WP = 0
        Write(h, La, 1);
        h.Load(a => { a.mov(rax, cr0); a.or(eax, (uint)Cr0.WP); a.mov(cr0, rax); });
        h.Step(3);
        AssertPf(WriteFault(h, La), Present | W, La);
    }

    [Fact]
    public void DisablingNxeFlushesSoXdBecomesReserved()
    {
        var (h, pt) = Setup(PagingKind.FourLevel, nxe: true);
        pt.Map(La, Frame1, P | RW | XD);
        Assert.Equal(Marker1, Read(h, La));
        h.Cpu.WriteMsr(MsrIndex.Efer, h.Cpu.EferValue & ~Efer.NXE);
        AssertPf(ReadFault(h, La), Present | Rsvd, La);
    }

    [Fact]
    public void PageCrossingAccessChecksBothPages()
    {
        var (h, pt) = Setup(PagingKind.FourLevel);
        pt.Map(La, Frame1, P | RW);
        h.Memory.WriteUInt64(Frame1 + 0xFFC, 0x4444_3333_2222_1111);
        AssertPf(ReadFault(h, La + 0xFFC), 0, La + 0x1000); // the second page is not present
        var pte2 = pt.Map(La + 0x1000, Frame1 + 0x1000, P | RW);
        h.Memory.WriteUInt32(Frame1 + 0x1000, 0x6666_5555);
        Assert.Equal(0x6666_5555_2222_1111UL, Read(h, La + 0xFFC));
        pt.WriteEntry(pte2, (Frame1 + 0x1000) | P);
        h.Cpu.FlushTlb(true);
        var before = h.Memory.ReadUInt64(Frame1 + 0xFF8);
        AssertPf(WriteFault(h, La + 0xFFE), Present | W, La + 0x1000);
        Assert.Equal(before, h.Memory.ReadUInt64(Frame1 + 0xFF8)); // nothing of the store landed
    }
}
