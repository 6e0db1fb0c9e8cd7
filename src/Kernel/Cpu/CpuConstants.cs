namespace Actorvisor.Kernel.Cpu;

/// <summary>RFLAGS bits (SDM Vol. 1, 3.4.3).</summary>
public static class RFlags
{
    public const ulong CF = 1 << 0, Fixed1 = 1 << 1, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7;
    public const ulong TF = 1 << 8, IF = 1 << 9, DF = 1 << 10, OF = 1 << 11, IOPL = 3 << 12, NT = 1 << 14;
    public const ulong RF = 1 << 16, VM = 1 << 17, AC = 1 << 18, VIF = 1 << 19, VIP = 1 << 20, ID = 1 << 21;
    public const int IoplShift = 12;
    /// <summary>The six flags arithmetic sets; kept lazily.</summary>
    public const ulong Arith = CF | PF | AF | ZF | SF | OF;
    /// <summary>Bits software can ever change (others read as their fixed values).</summary>
    public const ulong Writable = Arith | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;
}

/// <summary>Control-register bits (SDM Vol. 3A, 2.5).</summary>
public static class Cr0
{
    public const ulong PE = 1 << 0, MP = 1 << 1, EM = 1 << 2, TS = 1 << 3, ET = 1 << 4, NE = 1 << 5;
    public const ulong WP = 1 << 16, AM = 1 << 18, NW = 1 << 29, CD = 1 << 30, PG = 1UL << 31;
    public const ulong PowerOn = ET | CD | NW; // 0x60000010
}

public static class Cr4
{
    public const ulong VME = 1 << 0, PVI = 1 << 1, TSD = 1 << 2, DE = 1 << 3, PSE = 1 << 4, PAE = 1 << 5;
    public const ulong MCE = 1 << 6, PGE = 1 << 7, PCE = 1 << 8, OSFXSR = 1 << 9, OSXMMEXCPT = 1 << 10;
    public const ulong UMIP = 1 << 11, LA57 = 1 << 12, FSGSBASE = 1 << 16, PCIDE = 1 << 17, OSXSAVE = 1 << 18;
    public const ulong SMEP = 1 << 20, SMAP = 1 << 21;
    /// <summary>CR4 bits our CPU model implements; setting any other raises #GP.</summary>
    public const ulong Supported = VME | PVI | TSD | DE | PSE | PAE | MCE | PGE | PCE | OSFXSR | OSXMMEXCPT;
}

public static class Efer
{
    public const ulong SCE = 1 << 0, LME = 1 << 8, LMA = 1 << 10, NXE = 1 << 11;
    public const ulong Writable = SCE | LME | NXE;
}

/// <summary>Exception vectors (SDM Vol. 3A, 6.3.1).</summary>
public static class Vectors
{
    public const int DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8;
    public const int TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19;
}

/// <summary>Page-fault error code bits (SDM Vol. 3A, 4.7).</summary>
public static class PfError
{
    public const uint Present = 1, Write = 2, User = 4, Reserved = 8, Fetch = 16;
}

/// <summary>Segment register indices in hardware encoding order (ES, CS, SS, DS, FS, GS).</summary>
public static class Seg
{
    public const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;
}

/// <summary>General-purpose register indices in hardware encoding order.</summary>
public static class Gpr
{
    public const int RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
    public const int R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15;
}
